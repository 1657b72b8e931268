// The M55 firmware's interrupt-driven UART receive (hal/mps3_an547/cmsdk_uart.h)
// under QEMU at full speed (`toolchain/qemu-m55.sh --nvm DIR --link`, no
// -icount): input the host sends while the firmware is busy lands in the
// ring buffer and is served afterwards, byte for byte, and input past the
// ring's size is counted and reported on the link, never lost silently.
//
// Under QEMU a polled UART loses nothing either: QEMU's CMSDK UART model
// holds further input back until the one received byte is read. So what
// tells the interrupt path apart here is the ring filling while the
// firmware is busy, seen through its overflow report. (qmc flash at full
// speed, read back and compared, is tests/flash_m55_test.cpp's.)
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "common/crc32.h"
#include "common/flash_protocol.h"
#include "common/slip_frame.h"
#include "host/flash/exec_port.h"
#include "tests/cli_runner.h"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using qmc::testing::CliRun;
using qmc::testing::Qmc;
using qmc::testing::Slurp;

const fs::path kShared = QMC_SHARED_DIR;
// The firmware's ring (kUartRxRingBytes), as its overflow report states it.
constexpr size_t kRingBytes = 16384;

// The AN547 under QEMU with its UART on an exec port: everything it has
// printed so far, and a wait for more.
class QemuBoard {
 public:
  explicit QemuBoard(const fs::path& nvm)
      : port_("QMC_M55_ELF=" QMC_M55_ELF " " QMC_QEMU_M55 " --nvm " + nvm.string() + " --link") {}
  ~QemuBoard() { port_.Close(std::chrono::milliseconds(2000)); }

  void Send(const std::string& bytes) { port_.Write({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}); }

  // Reads until done(received()) holds (true) or `timeout` passes (false).
  bool WaitFor(const std::function<bool(const std::string&)>& done, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    uint8_t buffer[4096];
    while (!done(received_)) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      const size_t n = port_.Read(buffer, 200ms);
      received_.append(reinterpret_cast<const char*>(buffer), n);
    }
    return true;
  }

  const std::string& received() const { return received_; }

 private:
  qmc::host::flash::ExecPort port_;
  std::string received_;
};

// The stats lines in `text` that have arrived whole.
size_t StatsLines(const std::string& text) {
  size_t n = 0;
  for (size_t at = text.find("qmc-fw: stats "); at != std::string::npos; at = text.find("qmc-fw: stats ", at + 1)) {
    n += text.find('\n', at) != std::string::npos;
  }
  return n;
}

std::string Frame(qmc::flash::Opcode opcode, uint16_t seq, std::span<const uint8_t> payload) {
  std::vector<uint8_t> out(qmc::flash::kMaxFrameBytes);
  const size_t n = qmc::flash::EncodeFrame({static_cast<uint8_t>(opcode), 0, seq, 0, 0, 0}, payload, out);
  return std::string(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
}

template <typename Request>
std::string Frame(qmc::flash::Opcode opcode, uint16_t seq, const Request& request) {
  uint8_t payload[64];
  return Frame(opcode, seq, {payload, qmc::flash::Encode(request, payload)});
}

// The valid replies among `bytes`, by seq (console text and damaged frames skipped).
std::multimap<uint16_t, qmc::flash::PacketHeader> Replies(const std::string& bytes,
                                                         std::map<uint16_t, std::vector<uint8_t>>* payloads = nullptr) {
  std::vector<uint8_t> buffer(qmc::flash::kMaxPacketBytes);
  qmc::flash::SlipDecoder decoder(buffer);
  std::multimap<uint16_t, qmc::flash::PacketHeader> replies;
  for (const char c : bytes) {
    if (decoder.Push(static_cast<uint8_t>(c)) != qmc::flash::SlipDecoder::Event::kFrame) continue;
    qmc::flash::Packet packet;
    if (qmc::flash::ParsePacket(decoder.frame(), packet) != qmc::flash::PacketError::kNone) continue;
    if ((packet.header.flags & qmc::flash::kFlagReply) == 0) continue;
    replies.emplace(packet.header.seq, packet.header);
    if (payloads != nullptr) (*payloads)[packet.header.seq].assign(packet.payload.begin(), packet.payload.end());
  }
  return replies;
}

class UartRxM55 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kShared / "models/stories260K.bin")) GTEST_SKIP() << "../shared/models is missing";
    ASSERT_TRUE(fs::exists(QMC_M55_ELF)) << QMC_M55_ELF << " is missing: the m55_common_freestanding fixture builds it";
    dir_ = qmc::testing::FreshTestDir("qmc_uart_rx_m55_");
    board_ = dir_ / "board";
    fs::create_directories(board_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Puts an image into the board's DDR file where the firmware finds its
  // windows (linker/mps3_an547.ld: MRAM, ReRAM, DRAM at DDR offsets 0, 64 MiB
  // and 128 MiB), as a committed flash would leave it.
  void InstallImage() {
    const fs::path image = dir_ / "b3.qmc", nvm = dir_ / "nvm";
    CliRun r = Qmc("pack " + qmc::testing::Stories260K() + " -q --scheme qmc --bits 3 -o " + image.string(), dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = Qmc("nvm write " + image.string() + " " + nvm.string(), dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::ofstream ddr(board_ / "an547-ddr.bin", std::ios::binary);
    for (const auto& [file, offset] : {std::pair{"mram.bin", 0}, {"reram.bin", 64 << 20}, {"dram.bin", 128 << 20}}) {
      ddr.seekp(offset);
      ddr << Slurp(nvm / file);
    }
    ddr.seekp((2ll << 30) - 1);  // the DDR's full 2 GiB, as qemu-m55.sh makes it
    ddr.put(0);
    ASSERT_TRUE(ddr.good());
  }

  fs::path dir_;
  fs::path board_;
};

// A prompt that keeps the firmware generating, and behind it, sent at once,
// 64 lines (3 KB, against the UART's one-byte receive register) that
// each echo their seed in their stats line. Any byte lost changes a seed,
// an option (an error, or a prompt and another seed) or the line count.
TEST_F(UartRxM55, AConsoleBurstWhileGeneratingLosesNothing) {
  InstallImage();
  QemuBoard board(board_);
  ASSERT_TRUE(board.WaitFor([](const std::string& s) { return s.find("qmc-fw: ready:") != std::string::npos; }, 180s))
      << board.received();
  std::string burst = "steps=64 temp=0 Once upon a time\n";
  std::vector<std::string> seeds;
  for (uint64_t i = 0; i < 64; ++i) {
    seeds.push_back(std::to_string(1000000000000 + i * 7919));
    burst += "steps=1 temp=0 topp=1 kv=f32 seed=" + seeds.back() + "\n";
  }
  ASSERT_GT(burst.size(), 3000u);
  const size_t start = board.received().size();
  board.Send(burst);
  const bool answered = board.WaitFor(
      [&](const std::string& s) { return StatsLines(s.substr(start)) == 1 + seeds.size(); }, 600s);
  const std::string out = board.received().substr(start);
  ASSERT_TRUE(answered) << out;

  const std::regex stats(R"(qmc-fw: stats positions=(\d+) .* seed=(\d+))");
  std::vector<std::pair<std::string, std::string>> answers;  // positions, seed
  for (std::sregex_iterator it(out.begin(), out.end(), stats), done; it != done; ++it) {
    answers.emplace_back((*it)[1], (*it)[2]);
  }
  ASSERT_EQ(answers.size(), 1 + seeds.size()) << out;
  EXPECT_EQ(answers[0].first, "64");
  for (size_t i = 0; i < seeds.size(); ++i) {
    EXPECT_EQ(answers[1 + i].first, "1") << "line " << i;
    EXPECT_EQ(answers[1 + i].second, seeds[i]) << "line " << i;
  }
  EXPECT_EQ(out.find("qmc-fw: error"), std::string::npos) << out;
}

// The flash server, busy with CHECKSUMs over the 64 MiB ReRAM window,
// meanwhile gets 1,000 READ frames (24 KB, more than the ring holds). The
// ring takes what fits; the rest is dropped, and the next read reports
// exactly how many bytes. Every frame the report's loss does not explain
// is answered, in order; the frames it hit are NAKed or unanswered, and
// their bytes bound the reported count. The server then goes on serving.
TEST_F(UartRxM55, AFrameBurstPastTheRingIsCountedAndReported) {
  using qmc::flash::Opcode;
  QemuBoard board(board_);  // a blank board: no image, its flash server still answers
  ASSERT_TRUE(
      board.WaitFor([](const std::string& s) { return s.find("waiting for a flash") != std::string::npos; }, 180s))
      << board.received();
  board.Send(Frame(Opcode::kHello, 1, qmc::flash::HelloRequest{}));
  ASSERT_TRUE(board.WaitFor([](const std::string& s) { return Replies(s).count(1) == 1; }, 60s)) << board.received();

  // Four CRC passes over ReRAM (64 blocks of 1 MiB each): seconds of work.
  constexpr uint16_t kChecksums = 4, kReads = 1000, kFirstRead = 2 + kChecksums;
  std::string burst;
  for (uint16_t i = 0; i < kChecksums; ++i) {
    burst += Frame(Opcode::kChecksum, 2 + i, qmc::flash::ChecksumRequest{2, 0, 1u << 20, 64});
  }
  std::vector<std::pair<size_t, size_t>> reads;  // each READ frame's [begin, end) in the burst
  for (uint16_t i = 0; i < kReads; ++i) {
    const size_t begin = burst.size();
    burst += Frame(Opcode::kRead, kFirstRead + i, qmc::flash::ReadRequest{2, 0, 0});
    reads.emplace_back(begin, burst.size());
  }
  ASSERT_GT(burst.size(), kRingBytes + 4096);
  const size_t start = board.received().size();
  board.Send(burst);
  // The last CHECKSUM answered, then quiet: the ring has been served.
  ASSERT_TRUE(board.WaitFor([&](const std::string& s) { return Replies(s.substr(start)).count(1 + kChecksums) == 1; },
                            300s))
      << board.received().substr(start, 2000);
  size_t seen = 0;
  while (board.WaitFor([&](const std::string& s) { return s.size() > seen; }, 3s)) seen = board.received().size();
  // The server still serves: a HELLO after the burst is answered.
  constexpr uint16_t kLastHello = 9999;
  board.Send(Frame(Opcode::kHello, kLastHello, qmc::flash::HelloRequest{}));
  EXPECT_TRUE(board.WaitFor([&](const std::string& s) { return Replies(s.substr(start)).count(kLastHello) == 1; }, 60s));
  const std::string out = board.received().substr(start);

  const std::regex report(R"(qmc-fw: error: link: lost (\d+) received bytes \(receive buffer of (\d+) bytes full\))");
  uint64_t lost = 0;
  for (std::sregex_iterator it(out.begin(), out.end(), report), done; it != done; ++it) {
    lost += std::stoull((*it)[1]);
    EXPECT_EQ(std::stoull((*it)[2]), kRingBytes);
  }
  EXPECT_GT(lost, 0u) << "no loss reported: the ring never filled while the server was busy";

  std::map<uint16_t, std::vector<uint8_t>> payloads;
  const auto replies = Replies(out, &payloads);
  // CRCs of 1 MiB of zeros: a blank board's ReRAM.
  const std::vector<uint8_t> zeros(1u << 20);
  const uint32_t zeros_crc = qmc::Crc32(zeros.data(), zeros.size());
  for (uint16_t i = 0; i < kChecksums; ++i) {
    ASSERT_EQ(replies.count(2 + i), 1u) << "CHECKSUM " << i;
    EXPECT_EQ(replies.find(2 + i)->second.status, qmc::flash::kStatusOk);
    ASSERT_EQ(payloads[2 + i].size(), 64u * 4);
    for (size_t b = 0; b < 64; ++b) EXPECT_EQ(qmc::flash::LoadU32(&payloads[2 + i][4 * b]), zeros_crc);
  }
  uint64_t missing = 0, missing_bytes = 0;
  for (uint16_t i = 0; i < kReads; ++i) {
    bool ok = false;  // a NAK may carry this seq too, from the damaged frame's header
    for (auto [it, end] = replies.equal_range(kFirstRead + i); it != end; ++it) {
      ok = ok || (it->second.opcode == static_cast<uint8_t>(Opcode::kRead) && it->second.status == qmc::flash::kStatusOk);
    }
    if (!ok) {
      ++missing;
      missing_bytes += reads[i].second - reads[i].first;
    }
  }
  // Every unanswered frame lost at least one byte, and every lost byte was in one.
  EXPECT_GT(missing, 0u);
  EXPECT_LE(missing, lost);
  EXPECT_LE(lost, missing_bytes);
}

}  // namespace
