// The firmware's flash server, driven in-process: firmware::Run on the emu
// board in a thread, its link a pair of queues, requests built by hand from
// docs/protocol.md. Covers INFO, BEGIN/DATA (raw and zlib-deflated)/END,
// CHECKSUM, COPY, READ, the protection of the active slot and the commit
// area, every error reply the tests can provoke, NAKs for bad frames and
// recovery after garbage, COMMIT (refused for an incomplete or mismatched
// image, which leaves the old image booting; switching the boot when
// complete), boot fallback to the older commit, and the console hand-over
// both ways (RUN, then generation equal to `qmc run`).
#include <gtest/gtest.h>
#include <zlib.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/commit_record.h"
#include "common/flash_protocol.h"
#include "common/image_reader.h"
#include "common/slip_frame.h"
#include "common/slot_layout.h"
#include "firmware/firmware.h"
#include "hal/emu/emu_board.h"
#include "hal/emu/emu_clock.h"
#include "host/atomic_file.h"
#include "host/nvm_image.h"
#include "tests/cli_runner.h"

namespace qmc::flash {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

const fs::path kShared = QMC_SHARED_DIR;
const std::string kStats = "\nqmc-fw: stats ";

// The firmware's link: bytes the test sends wait in one queue, bytes the
// firmware writes pile up in the other.
class QueueLink final : public hal::ByteLink {
 public:
  Transfer Read(std::span<uint8_t> out, uint32_t timeout_us) override {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, std::chrono::microseconds(timeout_us), [&] { return !to_device_.empty() || closed_; });
    const size_t n = std::min(out.size(), to_device_.size());
    std::copy_n(to_device_.begin(), n, out.begin());
    to_device_.erase(to_device_.begin(), to_device_.begin() + static_cast<std::ptrdiff_t>(n));
    return {n, n == 0 && closed_};
  }
  Transfer Write(std::span<const uint8_t> data, uint32_t) override {
    std::lock_guard lock(mutex_);
    from_device_.insert(from_device_.end(), data.begin(), data.end());
    changed_.notify_all();
    return {data.size(), false};
  }

  // A link with a baud rate (0: none, like the emu's pipes): SetBaud records each switch.
  explicit QueueLink(uint32_t baud = 0) : baud_(baud) {}
  uint32_t baud() const override {
    std::lock_guard lock(mutex_);
    return baud_;
  }
  bool SetBaud(uint32_t baud) override {
    std::lock_guard lock(mutex_);
    baud_ = baud;
    switches_.push_back(baud);
    return true;
  }
  std::vector<uint32_t> Switches() const {
    std::lock_guard lock(mutex_);
    return switches_;
  }

  void Send(std::span<const uint8_t> bytes) {
    std::lock_guard lock(mutex_);
    to_device_.insert(to_device_.end(), bytes.begin(), bytes.end());
    changed_.notify_all();
  }
  void Close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    changed_.notify_all();
  }
  // Waits up to `timeout` for output beyond the first `have` bytes; all output so far.
  Bytes Output(size_t have, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return from_device_.size() > have; });
    return from_device_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  uint32_t baud_;
  std::vector<uint32_t> switches_;
  std::deque<uint8_t> to_device_;
  Bytes from_device_;
  bool closed_ = false;
};

struct Reply {
  PacketHeader header{};
  Bytes payload;
  ErrorCode error() const { return static_cast<ErrorCode>(header.error); }
};

template <typename Payload>
Bytes Payload_(const Payload& p) {
  Bytes out(kMaxPayloadBytes);
  out.resize(Encode(p, out));
  return out;
}

Bytes RawDeflate(std::span<const uint8_t> data) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out(deflateBound(&z, data.size()));
  z.next_in = const_cast<uint8_t*>(data.data());
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

uint32_t Crc(std::span<const uint8_t> bytes) { return static_cast<uint32_t>(crc32(0, bytes.data(), static_cast<uInt>(bytes.size()))); }

class FlashServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kShared / "models/stories260K.bin")) return;
    suite_dir_ = new fs::path(fs::path(::testing::TempDir()) / ("qmc_flash_server_" + std::to_string(::getpid())));
    fs::create_directories(*suite_dir_);
    for (const char* scheme : {"rtn", "qmc"}) {
      const fs::path image = *suite_dir_ / (std::string(scheme) + ".qmc");
      const testing::CliRun r = testing::Qmc("pack " + (kShared / "models/stories260K.bin").string() +
                                                 " --tokenizer " + (kShared / "models/tok512.bin").string() +
                                                 " -q --scheme " + scheme + " -o " + image.string(),
                                             *suite_dir_);
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
  }
  static void TearDownTestSuite() {
    if (suite_dir_ != nullptr) fs::remove_all(*suite_dir_);
    delete suite_dir_;
    suite_dir_ = nullptr;
  }

  void SetUp() override {
    if (suite_dir_ == nullptr) GTEST_SKIP() << "../shared/models is missing";
    dir_ = testing::FreshTestDir("qmc_flash_server_");
    nvm_ = dir_ / "nvm";
    fs::create_directories(nvm_);
  }
  void TearDown() override {
    StopFirmware();
    fs::remove_all(dir_);
  }

  static fs::path ImagePath(const std::string& scheme) { return *suite_dir_ / (scheme + ".qmc"); }
  static Bytes ImageBytes(const std::string& scheme) { return host::ReadWholeFile(ImagePath(scheme)); }

  void PreFlash(const std::string& scheme) {
    const Bytes file = ImageBytes(scheme);
    host::WriteImageToNvm(image::ImageView::OpenFile(file).value(), file, nvm_);
  }

  std::string Expected(const std::string& scheme, const std::string& args) {
    const testing::CliRun r = testing::Qmc("run " + ImagePath(scheme).string() + " " + args, dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }

  void StartFirmware(const hal::emu::ReadNoise& noise = {}, uint32_t link_baud = 0) {
    link_ = std::make_unique<QueueLink>(link_baud);
    board_ = std::make_unique<hal::emu::EmuBoard>(nvm_, noise);
    rx_.clear();
    text_pos_ = 0;
    thread_ = std::thread([this] { run_result_ = firmware::Run(board_->info(), *link_, clock_); });
  }
  void StopFirmware() {
    if (!thread_.joinable()) return;
    link_->Close();
    thread_.join();
    board_.reset();
  }

  // Hands the link to the flash server (the host's END byte).
  void EnterFlash() {
    const uint8_t end = kSlipEnd;
    link_->Send({&end, 1});
  }

  void SendFrame(const PacketHeader& header, std::span<const uint8_t> payload) {
    Bytes frame(kMaxFrameBytes);
    frame.resize(EncodeFrame(header, payload, frame));
    link_->Send(frame);
  }

  // The next reply frame after the text already seen; fails the test after 20 s.
  Reply NextReply() {
    Bytes buffer(kMaxPacketBytes);
    SlipDecoder decoder(buffer);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (size_t pos = text_pos_;;) {
      for (; pos < rx_.size(); ++pos) {
        if (decoder.Push(rx_[pos]) != SlipDecoder::Event::kFrame) continue;
        Packet p;
        EXPECT_EQ(ParsePacket(decoder.frame(), p), PacketError::kNone);
        text_pos_ = pos;  // the closing END may open the next frame
        return {p.header, Bytes(p.payload.begin(), p.payload.end())};
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "no reply";
        return {};
      }
      rx_ = link_->Output(rx_.size(), std::chrono::milliseconds(100));
    }
  }

  Reply Request(Opcode opcode, std::span<const uint8_t> payload = {}) {
    const uint16_t seq = ++seq_;
    SendFrame({static_cast<uint8_t>(opcode), 0, seq, 0, 0, 0}, payload);
    Reply reply = NextReply();
    EXPECT_EQ(reply.header.opcode, static_cast<uint8_t>(opcode));
    EXPECT_EQ(reply.header.seq, seq);
    EXPECT_EQ(reply.header.flags, kFlagReply);
    EXPECT_EQ(reply.header.status, reply.error() == ErrorCode::kNone ? kStatusOk : kStatusError);
    if (reply.error() != ErrorCode::kNone) EXPECT_TRUE(reply.payload.empty());
    return reply;
  }
  template <typename P>
  Reply Request(Opcode opcode, const P& payload) {
    return Request(opcode, std::span<const uint8_t>(Payload_(payload)));
  }

  // Console output after what was read so far, up to and including `marker`.
  std::string WaitText(const std::string& marker) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
      const std::string text(rx_.begin() + static_cast<std::ptrdiff_t>(text_pos_), rx_.end());
      const size_t at = text.find(marker);
      if (at != std::string::npos) {
        text_pos_ += at + marker.size();
        return text.substr(0, at + marker.size());
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "no \"" << marker << "\" in: " << text;
        return text;
      }
      rx_ = link_->Output(rx_.size(), std::chrono::milliseconds(100));
    }
  }

  // Through the console's banner, up to where its output for a prompt starts.
  void WaitReady() {
    WaitText("qmc-fw: ready:");
    WaitText("\n");
  }

  // The console's text for one prompt (the prompt echoed and what follows),
  // up to its stats line, which is skipped.
  std::string GeneratedText() {
    const std::string text = WaitText(kStats);
    WaitText("\n");
    return text.substr(0, text.size() - kStats.size());
  }
  std::string Generate(const std::string& line) {
    const std::string input = line + "\n";
    link_->Send({reinterpret_cast<const uint8_t*>(input.data()), input.size()});
    return GeneratedText();
  }

  InfoReply Hello() {
    const Reply r = Request(Opcode::kHello, HelloRequest{});
    InfoReply info;
    EXPECT_EQ(r.error(), ErrorCode::kNone);
    EXPECT_TRUE(Decode(std::span<const uint8_t>(r.payload), info));
    return info;
  }

  ErrorCode Begin(uint8_t window, uint32_t offset, uint32_t size) {
    BeginRequest b;
    b.window = window, b.offset = offset, b.size = size;
    return Request(Opcode::kBegin, b).error();
  }
  ErrorCode Data(uint32_t offset, std::span<const uint8_t> raw, bool deflate) {
    DataRequest d;
    d.offset = offset, d.raw_length = static_cast<uint16_t>(raw.size());
    d.encoding = static_cast<uint8_t>(deflate ? DataEncoding::kDeflate : DataEncoding::kRaw);
    Bytes payload = Payload_(d);
    const Bytes body = deflate ? RawDeflate(raw) : Bytes(raw.begin(), raw.end());
    payload.insert(payload.end(), body.begin(), body.end());
    return Request(Opcode::kData, std::span<const uint8_t>(payload)).error();
  }
  EndReply End() {
    const Reply r = Request(Opcode::kEnd);
    EndReply end;
    EXPECT_EQ(r.error(), ErrorCode::kNone);
    EXPECT_TRUE(Decode(std::span<const uint8_t>(r.payload), end));
    return end;
  }
  // Writes `bytes` at `offset` of `window` as the flasher does: BEGIN, 4 KiB
  // DATA blocks (deflated every other block), END, whose CRC must match.
  void WriteRange(uint8_t window, uint32_t offset, std::span<const uint8_t> bytes) {
    ASSERT_EQ(Begin(window, offset, static_cast<uint32_t>(bytes.size())), ErrorCode::kNone);
    for (size_t done = 0, block = 0; done < bytes.size(); done += kMaxDataBytes, ++block) {
      const size_t n = std::min<size_t>(kMaxDataBytes, bytes.size() - done);
      ASSERT_EQ(Data(static_cast<uint32_t>(done), bytes.subspan(done, n), block % 2 == 1), ErrorCode::kNone);
    }
    const EndReply end = End();
    EXPECT_EQ(end.crc32, Crc(bytes));
    EXPECT_EQ(end.bytes_written, bytes.size());
  }
  // The whole image into `slot`: sections, then the boot record; `skip`
  // names a section left unwritten.
  void WriteImage(const Bytes& file, uint32_t slot, const InfoReply& info, uint32_t skip = image::kNoSection) {
    const image::ImageView view = image::ImageView::OpenFile(file).value();
    for (uint32_t i = 0; i < view.section_count(); ++i) {
      if (i == skip) continue;
      const image::SectionEntry& s = view.section(i);
      WriteRange(s.window, info.windows[s.window].slot_offset(slot) + s.window_offset, view.section_bytes(i));
    }
    const uint32_t mram = static_cast<uint32_t>(image::Window::kMram);
    WriteRange(mram, info.windows[mram].slot_offset(slot),
               std::span(file).first(image::BootRecordSize(view.section_count())));
  }
  static uint32_t HeaderCrc(const Bytes& file) { return image::ImageView::OpenFile(file).value().header().header_crc; }
  ErrorCode Commit(uint8_t slot, uint32_t header_crc) {
    CommitRequest c;
    c.slot = slot, c.header_crc = header_crc;
    return Request(Opcode::kCommit, c).error();
  }

  static fs::path* suite_dir_;
  fs::path dir_, nvm_;
  std::unique_ptr<QueueLink> link_;
  std::unique_ptr<hal::emu::EmuBoard> board_;
  hal::emu::EmuClock clock_;
  std::thread thread_;
  int run_result_ = -1;
  Bytes rx_;
  size_t text_pos_ = 0;
  uint16_t seq_ = 0;
};

fs::path* FlashServerTest::suite_dir_ = nullptr;

constexpr uint8_t kMram = 1, kReram = 2, kDram = 3;

TEST_F(FlashServerTest, HelloReportsTheBoardAndItsSlots) {
  StartFirmware();
  WaitText("waiting for a flash\n");
  EnterFlash();
  const InfoReply info = Hello();
  EXPECT_EQ(info.version, 1u);
  EXPECT_EQ(info.max_payload, 4096u + 16u);
  EXPECT_STREQ(info.board, "emu");
  ASSERT_EQ(info.window_count, 4u);
  EXPECT_EQ(info.active_slot, kNoActiveSlot);
  EXPECT_EQ(info.commit_sequence, 0u);
  const uint32_t sizes[4] = {2u << 20, 8u << 20, 64u << 20, 64u << 20};
  for (uint32_t w = 0; w < 4; ++w) {
    EXPECT_EQ(info.windows[w].kind, w);
    EXPECT_EQ(info.windows[w].size, sizes[w]);
    const nvm::SlotGeometry g = nvm::SlotsOf(static_cast<image::Window>(w), sizes[w]);
    EXPECT_EQ(info.windows[w].slot0_offset, g.offset[0]);
    EXPECT_EQ(info.windows[w].slot1_offset, g.offset[1]);
    EXPECT_EQ(info.windows[w].slot_size, g.size);
  }
  EXPECT_EQ(info.windows[kMram].flags, kWindowNonVolatile);
  EXPECT_EQ(info.windows[kReram].flags, kWindowNonVolatile);
  EXPECT_EQ(info.windows[kDram].flags, 0u);
  EXPECT_EQ(info.windows[kReram].write_granularity, 4u);
  EXPECT_EQ(info.windows[kMram].write_granularity, 1u);
  EXPECT_EQ(info.windows[kMram].slot0_offset, 4096u);
  EXPECT_EQ(Request(Opcode::kRun).error(), ErrorCode::kNoImage);  // nothing committed
}

TEST_F(FlashServerTest, FlashCommitRunGeneratesAsQmcRun) {
  const std::string expected = Expected("qmc", "-p \"Once upon\" -n 40 -t 0");
  StartFirmware();
  WaitText("waiting for a flash\n");
  EnterFlash();
  InfoReply info = Hello();
  const Bytes file = ImageBytes("qmc");
  WriteImage(file, 0, info);
  ASSERT_EQ(Commit(0, HeaderCrc(file)), ErrorCode::kNone);
  info = Hello();
  EXPECT_EQ(info.active_slot, 0u);
  EXPECT_EQ(info.commit_sequence, 1u);
  ASSERT_EQ(Request(Opcode::kRun).error(), ErrorCode::kNone);
  WaitText("qmc-fw: image in slot 0, commit 1\n");
  WaitReady();
  EXPECT_EQ(Generate("steps=40 Once upon") + "\n", expected);
  // The flash survives a restart of the board.
  StopFirmware();
  StartFirmware();
  WaitText("qmc-fw: image in slot 0, commit 1\n");
  WaitReady();
  EXPECT_EQ(Generate("steps=40 Once upon") + "\n", expected);
}

TEST_F(FlashServerTest, ChecksumAndReadSeeWhatIsStored) {
  PreFlash("rtn");
  StartFirmware();
  EnterFlash();
  const InfoReply info = Hello();
  const Bytes file = ImageBytes("rtn");
  const image::ImageView view = image::ImageView::OpenFile(file).value();
  const image::SectionEntry& s = view.section(0);
  const uint32_t base = info.windows[s.window].slot0_offset + s.window_offset;
  // Three 100-byte blocks of section 0.
  ChecksumRequest c;
  c.window = s.window, c.offset = base, c.block_size = 100, c.count = 3;
  const Reply sums = Request(Opcode::kChecksum, c);
  ASSERT_EQ(sums.error(), ErrorCode::kNone);
  ASSERT_EQ(sums.payload.size(), 12u);
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(LoadU32(&sums.payload[4 * i]), Crc(view.section_bytes(0).subspan(100 * i, 100)));
  }
  ReadRequest r;
  r.window = s.window, r.offset = base, r.length = 300;
  const Reply read = Request(Opcode::kRead, r);
  ASSERT_EQ(read.error(), ErrorCode::kNone);
  EXPECT_EQ(read.payload, Bytes(view.section_bytes(0).begin(), view.section_bytes(0).begin() + 300));
  // The commit record as qmc nvm write left it.
  r.window = kMram, r.offset = 0, r.length = 32;
  const Reply record = Request(Opcode::kRead, r);
  nvm::CommitRecord copy0;
  std::memcpy(&copy0, record.payload.data(), 32);
  EXPECT_TRUE(nvm::IsValid(copy0));
  EXPECT_EQ(copy0.slot, 0u);
  EXPECT_EQ(copy0.sequence, 1u);
  EXPECT_EQ(copy0.header_crc, view.header().header_crc);

  c.count = (kMaxPayloadBytes / 4) + 1;  // more CRCs than a reply holds
  EXPECT_EQ(Request(Opcode::kChecksum, c).error(), ErrorCode::kBadPayload);
  c.count = 2, c.offset = (8u << 20) - 100;
  EXPECT_EQ(Request(Opcode::kChecksum, c).error(), ErrorCode::kOutOfRange);
  c.window = 4;
  EXPECT_EQ(Request(Opcode::kChecksum, c).error(), ErrorCode::kOutOfRange);
  r.offset = (8u << 20) - 10;
  EXPECT_EQ(Request(Opcode::kRead, r).error(), ErrorCode::kOutOfRange);
  r.offset = 0, r.length = kMaxPayloadBytes + 1;
  EXPECT_EQ(Request(Opcode::kRead, r).error(), ErrorCode::kBadPayload);
}

TEST_F(FlashServerTest, RefusesWritesIntoTheActiveSlotAndTheCommitArea) {
  PreFlash("rtn");  // slot 0 active
  StartFirmware();
  EnterFlash();
  const InfoReply info = Hello();
  ASSERT_EQ(info.active_slot, 0u);
  const uint32_t reram1 = info.windows[kReram].slot1_offset, mram1 = info.windows[kMram].slot1_offset;
  EXPECT_EQ(Begin(kReram, 0, 4096), ErrorCode::kProtected);
  EXPECT_EQ(Begin(kReram, reram1 - 4, 8), ErrorCode::kProtected);  // straddles into slot 0
  EXPECT_EQ(Begin(kDram, 64, 64), ErrorCode::kProtected);
  EXPECT_EQ(Begin(kMram, 0, 32), ErrorCode::kProtected);     // commit record copy 0
  EXPECT_EQ(Begin(kMram, 2048, 32), ErrorCode::kProtected);  // copy 1
  EXPECT_EQ(Begin(kMram, 4096, 32), ErrorCode::kProtected);  // slot 0
  EXPECT_EQ(Begin(0, 0, 64), ErrorCode::kProtected);         // SRAM
  EXPECT_EQ(Begin(kReram, reram1 + 2, 8), ErrorCode::kAlignment);
  EXPECT_EQ(Begin(kReram, (64u << 20) - 4, 8), ErrorCode::kOutOfRange);
  EXPECT_EQ(Begin(4, 0, 8), ErrorCode::kOutOfRange);
  EXPECT_EQ(Begin(kReram, reram1, 0), ErrorCode::kBadPayload);
  CopyRequest c;
  c.window = kMram, c.source = mram1, c.destination = 4096 + 64, c.length = 16;
  EXPECT_EQ(Request(Opcode::kCopy, c).error(), ErrorCode::kProtected);
  c.destination = 100;
  EXPECT_EQ(Request(Opcode::kCopy, c).error(), ErrorCode::kProtected);
  c.source = 4096, c.destination = mram1, c.length = (8u << 20) - mram1 + 1;
  EXPECT_EQ(Request(Opcode::kCopy, c).error(), ErrorCode::kOutOfRange);
  c.source = mram1, c.destination = mram1 + 8, c.length = 16;
  EXPECT_EQ(Request(Opcode::kCopy, c).error(), ErrorCode::kBadPayload);  // overlapping
  // The inactive slot is writable.
  EXPECT_EQ(Begin(kReram, reram1, 8), ErrorCode::kNone);
  EXPECT_EQ(Begin(kMram, mram1, 8), ErrorCode::kNone);
}

TEST_F(FlashServerTest, DataRulesAndErrors) {
  StartFirmware();
  EnterFlash();
  const InfoReply info = Hello();
  const uint32_t base = info.windows[kReram].slot1_offset;
  const Bytes block(4096, 0x5A);
  EXPECT_EQ(Data(0, block, false), ErrorCode::kNotBegun);  // no BEGIN
  EXPECT_EQ(Request(Opcode::kEnd).error(), ErrorCode::kNotBegun);
  ASSERT_EQ(Begin(kReram, base, 8192), ErrorCode::kNone);
  EXPECT_EQ(Data(8192 - 2048, block, false), ErrorCode::kNotBegun);  // past the range
  EXPECT_EQ(Data(2, std::span(block).first(8), false), ErrorCode::kAlignment);
  EXPECT_EQ(Data(0, std::span(block).first(6), false), ErrorCode::kAlignment);  // a partial granule mid-range

  DataRequest d;
  d.offset = 0, d.raw_length = 4096, d.encoding = 0;
  Bytes payload = Payload_(d);
  payload.insert(payload.end(), block.begin(), block.begin() + 4095);  // one byte short
  EXPECT_EQ(Request(Opcode::kData, std::span<const uint8_t>(payload)).error(), ErrorCode::kLengthMismatch);
  d.encoding = 1;
  payload = Payload_(d);
  const Bytes half = RawDeflate(std::span(block).first(2048));  // inflates to 2048, not 4096
  payload.insert(payload.end(), half.begin(), half.end());
  EXPECT_EQ(Request(Opcode::kData, std::span<const uint8_t>(payload)).error(), ErrorCode::kLengthMismatch);
  payload = Payload_(d);
  const Bytes too_long = RawDeflate(Bytes(5000, 1));  // more than raw_length
  payload.insert(payload.end(), too_long.begin(), too_long.end());
  EXPECT_EQ(Request(Opcode::kData, std::span<const uint8_t>(payload)).error(), ErrorCode::kLengthMismatch);
  payload = Payload_(d);
  payload.insert(payload.end(), {0xFF, 0xFF, 0xFF, 0xFF});  // block type 3: not deflate
  EXPECT_EQ(Request(Opcode::kData, std::span<const uint8_t>(payload)).error(), ErrorCode::kInflate);
  d.encoding = 2;
  EXPECT_EQ(Request(Opcode::kData, d).error(), ErrorCode::kBadPayload);
  d.encoding = 0, d.raw_length = 0;
  EXPECT_EQ(Request(Opcode::kData, d).error(), ErrorCode::kBadPayload);
  EXPECT_EQ(Request(Opcode::kData, std::span<const uint8_t>(payload).first(5)).error(), ErrorCode::kBadPayload);

  // A retried block rewrites the same bytes; END sees the range and counts both.
  ASSERT_EQ(Data(0, block, true), ErrorCode::kNone);
  ASSERT_EQ(Data(0, block, true), ErrorCode::kNone);
  ASSERT_EQ(Data(4096, block, false), ErrorCode::kNone);
  const EndReply end = End();
  EXPECT_EQ(end.crc32, Crc(Bytes(8192, 0x5A)));
  EXPECT_EQ(end.bytes_written, 3u * 4096u);
  EXPECT_EQ(Data(0, block, false), ErrorCode::kNotBegun);  // END closed the range
}

TEST_F(FlashServerTest, APartialLastGranuleKeepsTheBytesAfterTheRange) {
  StartFirmware();
  EnterFlash();
  const InfoReply info = Hello();
  const uint32_t base = info.windows[kReram].slot1_offset;
  ASSERT_EQ(Begin(kReram, base, 12), ErrorCode::kNone);
  ASSERT_EQ(Data(0, Bytes(12, 0xEE), false), ErrorCode::kNone);
  End();
  const Bytes ten(10, 0x11);
  ASSERT_EQ(Begin(kReram, base, 10), ErrorCode::kNone);  // ends inside a 4-byte word
  ASSERT_EQ(Data(0, ten, false), ErrorCode::kNone);
  EXPECT_EQ(End().crc32, Crc(ten));
  ReadRequest r;
  r.window = kReram, r.offset = base, r.length = 12;
  const Reply read = Request(Opcode::kRead, r);
  Bytes expected = ten;
  expected.insert(expected.end(), {0xEE, 0xEE});
  EXPECT_EQ(read.payload, expected);
}

TEST_F(FlashServerTest, BadFramesGetANakAndGarbageIsSurvived) {
  StartFirmware();
  EnterFlash();
  // A HELLO with one byte of its CRC wrong.
  Bytes packet(64);
  packet.resize(BuildPacket({1, 0, 0x4242, 0, 0, 0}, Payload_(HelloRequest{}), packet));
  packet.back() ^= 1;
  Bytes frame(kMaxFrameBytes);
  frame.resize(SlipEncode(packet, frame));
  link_->Send(frame);
  Reply nak = NextReply();
  EXPECT_EQ(nak.header.opcode, 0u);
  EXPECT_EQ(nak.header.seq, 0x4242u);
  EXPECT_EQ(nak.header.status, kStatusError);
  EXPECT_EQ(nak.error(), ErrorCode::kBadFrame);
  // A runt frame: no seq to copy.
  link_->Send(Bytes{0xC0, 0x01, 0x02, 0xC0});
  nak = NextReply();
  EXPECT_EQ(nak.header.opcode, 0u);
  EXPECT_EQ(nak.header.seq, 0u);
  // A bad escape.
  link_->Send(Bytes{0xC0, 0x01, 0x00, 0x07, 0x00, 0xDB, 0x01, 0xC0});
  nak = NextReply();
  EXPECT_EQ(nak.error(), ErrorCode::kBadFrame);
  EXPECT_EQ(nak.header.seq, 7u);
  // An oversize frame.
  Bytes big(kMaxPacketBytes + 100, 0x33);
  link_->Send(Bytes{0xC0});
  link_->Send(big);
  link_->Send(Bytes{0xC0});
  nak = NextReply();
  EXPECT_EQ(nak.error(), ErrorCode::kBadFrame);
  EXPECT_EQ(nak.header.seq, 0x3333u);
  // Random garbage (END bytes included), then a valid request is served.
  std::mt19937 rng(11);
  Bytes garbage(20000);
  for (uint8_t& b : garbage) b = static_cast<uint8_t>(rng());
  garbage.push_back(kSlipEnd);
  link_->Send(garbage);
  const uint16_t seq = 900;
  SendFrame({static_cast<uint8_t>(Opcode::kHello), 0, seq, 0, 0, 0}, Payload_(HelloRequest{}));
  for (int i = 0;; ++i) {  // the NAKs the garbage earned come first
    ASSERT_LT(i, 1000);
    const Reply r = NextReply();
    if (r.header.opcode == 0) continue;
    EXPECT_EQ(r.header.opcode, static_cast<uint8_t>(Opcode::kHello));
    EXPECT_EQ(r.header.seq, seq);
    EXPECT_EQ(r.error(), ErrorCode::kNone);
    break;
  }
  // An unknown opcode and a malformed HELLO get error replies, not silence.
  EXPECT_EQ(Request(static_cast<Opcode>(0x55)).error(), ErrorCode::kUnknownOpcode);
  EXPECT_EQ(Request(Opcode::kHello, std::span<const uint8_t>(Bytes{1, 0, 0})).error(), ErrorCode::kBadPayload);
  EXPECT_EQ(Request(Opcode::kReset, std::span<const uint8_t>(Bytes{1})).error(), ErrorCode::kBadPayload);
}

TEST_F(FlashServerTest, AnIncompleteImageIsNotCommittedAndTheOldOneBoots) {
  const std::string old_text = Expected("rtn", "-p Once -n 30 -t 0");
  PreFlash("rtn");
  StartFirmware();
  WaitText("qmc-fw: image in slot 0, commit 1\n");
  EnterFlash();
  const InfoReply info = Hello();
  const Bytes file = ImageBytes("qmc");
  const image::ImageView view = image::ImageView::OpenFile(file).value();
  uint32_t reram_section = 0;
  while (view.section(reram_section).window != kReram) ++reram_section;
  WriteImage(file, 1, info, reram_section);  // every section but the inlier codes
  EXPECT_EQ(Commit(1, HeaderCrc(file)), ErrorCode::kImageInvalid);
  EXPECT_EQ(Commit(2, HeaderCrc(file)), ErrorCode::kBadPayload);
  // Complete, but not the image the host names.
  WriteRange(kReram, info.windows[kReram].slot1_offset + view.section(reram_section).window_offset,
             view.section_bytes(reram_section));
  EXPECT_EQ(Commit(1, HeaderCrc(file) ^ 1), ErrorCode::kHeaderMismatch);
  ASSERT_EQ(Request(Opcode::kReset).error(), ErrorCode::kNone);
  WaitText("qmc-fw: image in slot 0, commit 1\n");
  WaitReady();
  EXPECT_EQ(Generate("steps=30 Once") + "\n", old_text);
}

TEST_F(FlashServerTest, ACommittedImageBootsAndAFailedOneFallsBack) {
  const std::string old_text = Expected("rtn", "-p Once -n 30 -t 0");
  const std::string new_text = Expected("qmc", "-p Once -n 30 -t 0");
  ASSERT_NE(old_text, new_text);
  PreFlash("rtn");
  StartFirmware();
  EnterFlash();
  const InfoReply info = Hello();
  const Bytes file = ImageBytes("qmc");
  WriteImage(file, 1, info);
  ASSERT_EQ(Commit(1, HeaderCrc(file)), ErrorCode::kNone);
  // The committed slot is now the protected one.
  EXPECT_EQ(Begin(kReram, info.windows[kReram].slot1_offset, 4), ErrorCode::kProtected);
  EXPECT_EQ(Begin(kReram, 0, 4), ErrorCode::kNone);
  ASSERT_EQ(Request(Opcode::kReset).error(), ErrorCode::kNone);
  WaitText("qmc-fw: image in slot 1, commit 2\n");
  WaitReady();
  EXPECT_EQ(Generate("steps=30 Once") + "\n", new_text);
  StopFirmware();

  // The new record went to copy 1; copy 0 still names slot 0.
  nvm::CommitRecord copies[2];
  {
    std::ifstream mram(nvm_ / "mram.bin", std::ios::binary);
    mram.read(reinterpret_cast<char*>(&copies[0]), 32);
    mram.seekg(2048);
    mram.read(reinterpret_cast<char*>(&copies[1]), 32);
  }
  ASSERT_TRUE(nvm::IsValid(copies[0]) && nvm::IsValid(copies[1]));
  EXPECT_EQ(copies[0].slot, 0u);
  EXPECT_EQ(copies[1].slot, 1u);
  EXPECT_EQ(copies[1].sequence, 2u);

  // Slot 1's inlier codes go bad: boot falls back to the older commit.
  {
    std::fstream reram(nvm_ / "reram.bin", std::ios::in | std::ios::out | std::ios::binary);
    reram.seekp(info.windows[kReram].slot1_offset + 100);
    reram.put(0x7F);
  }
  StartFirmware();
  WaitText("qmc-fw: newest commit rejected: ");
  WaitText("qmc-fw: image in slot 0, commit 1\n");
  WaitReady();
  EXPECT_EQ(Generate("steps=30 Once") + "\n", old_text);
}

TEST_F(FlashServerTest, CopyReusesTheActiveSlot) {
  const std::string text = Expected("rtn", "-p Once -n 30 -t 0");
  PreFlash("rtn");
  StartFirmware();
  EnterFlash();
  const InfoReply info = Hello();
  const Bytes file = ImageBytes("rtn");
  const image::ImageView view = image::ImageView::OpenFile(file).value();
  for (uint32_t i = 0; i < view.section_count(); ++i) {
    const image::SectionEntry& s = view.section(i);
    CopyRequest c;
    c.window = s.window, c.length = s.length;
    c.source = info.windows[s.window].slot0_offset + s.window_offset;
    c.destination = info.windows[s.window].slot1_offset + s.window_offset;
    const Reply r = Request(Opcode::kCopy, c);
    ASSERT_EQ(r.error(), ErrorCode::kNone);
    EXPECT_EQ(LoadU32(r.payload.data()), s.crc32);
  }
  CopyRequest record;
  record.window = kMram, record.length = image::BootRecordSize(view.section_count());
  record.source = info.windows[kMram].slot0_offset, record.destination = info.windows[kMram].slot1_offset;
  ASSERT_EQ(Request(Opcode::kCopy, record).error(), ErrorCode::kNone);
  ASSERT_EQ(Commit(1, HeaderCrc(file)), ErrorCode::kNone);
  ASSERT_EQ(Request(Opcode::kRun).error(), ErrorCode::kNone);
  WaitText("qmc-fw: image in slot 1, commit 2\n");
  WaitReady();
  EXPECT_EQ(Generate("steps=30 Once") + "\n", text);
}

// With ReRAM programming errors the boot after RUN validates the stored
// bits, not the noisy ones the engine was reading, and reads the same errors again.
TEST_F(FlashServerTest, RunBootsAgainUnderReadNoise) {
  PreFlash("qmc");
  StartFirmware({hal::emu::NoiseKind::kProgram, hal::emu::SymmetricProfile(0.3, 0.0), 1});
  WaitReady();
  const std::string noisy = Generate("steps=30 Once");
  EnterFlash();
  ASSERT_EQ(Request(Opcode::kRun).error(), ErrorCode::kNone);
  WaitText("qmc-fw: image in slot 0, commit 1\n");
  WaitReady();
  EXPECT_EQ(Generate("steps=30 Once"), noisy);
  EXPECT_NE(noisy + "\n", Expected("qmc", "-p Once -n 30 -t 0"));  // the noise did change the text
}

TEST_F(FlashServerTest, HandOverKeepsEveryByteOnBothSides) {
  const std::string text = Expected("rtn", "-p Once -n 20 -t 0");
  PreFlash("rtn");
  StartFirmware();
  WaitReady();
  // A prompt, then at once (same write, mid-buffer) a frame: both are served.
  std::string line = "steps=20 Once\n";
  Bytes bytes(line.begin(), line.end());
  Bytes frame(kMaxFrameBytes);
  frame.resize(EncodeFrame({static_cast<uint8_t>(Opcode::kHello), 0, 77, 0, 0, 0}, Payload_(HelloRequest{}), frame));
  bytes.insert(bytes.end(), frame.begin(), frame.end());
  // RUN, and the next prompt right behind it: the console gets the prompt.
  frame.resize(kMaxFrameBytes);
  frame.resize(EncodeFrame({static_cast<uint8_t>(Opcode::kRun), 0, 78, 0, 0, 0}, {}, frame));
  bytes.insert(bytes.end(), frame.begin(), frame.end());
  bytes.insert(bytes.end(), line.begin(), line.end());
  link_->Send(bytes);

  EXPECT_EQ(GeneratedText() + "\n", text);
  Reply r = NextReply();
  EXPECT_EQ(r.header.opcode, static_cast<uint8_t>(Opcode::kHello));
  EXPECT_EQ(r.header.seq, 77u);
  r = NextReply();
  EXPECT_EQ(r.header.opcode, static_cast<uint8_t>(Opcode::kRun));
  EXPECT_EQ(r.header.seq, 78u);
  EXPECT_EQ(r.error(), ErrorCode::kNone);
  WaitReady();
  EXPECT_EQ(GeneratedText() + "\n", text);
}

// The link's switches once `count` have happened, waiting up to `timeout`.
std::vector<uint32_t> SwitchesAfter(const QueueLink& link, size_t count, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (link.Switches().size() < count && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return link.Switches();
}

TEST_F(FlashServerTest, BaudSwitchesAfterItsReplyAndHoldsOnceAPacketComes) {
  StartFirmware({}, 115200);
  WaitText("waiting for a flash\n");
  EnterFlash();
  Hello();
  ASSERT_EQ(Request(Opcode::kBaud, BaudRequest{921600}).error(), ErrorCode::kNone);
  EXPECT_EQ(SwitchesAfter(*link_, 1, std::chrono::milliseconds(2000)), std::vector<uint32_t>({921600}));
  Hello();  // a valid packet at the new rate ends the probation
  std::this_thread::sleep_for(std::chrono::milliseconds(kBaudProbationMs + 500));
  EXPECT_EQ(link_->Switches(), std::vector<uint32_t>({921600}));
  // The session ends: the console runs at the board's own rate again.
  ASSERT_EQ(Request(Opcode::kReset).error(), ErrorCode::kNone);
  EXPECT_EQ(SwitchesAfter(*link_, 2, std::chrono::milliseconds(2000)), std::vector<uint32_t>({921600, 115200}));
}

TEST_F(FlashServerTest, BaudFallsBackAfterItsProbationOfSilence) {
  StartFirmware({}, 115200);
  WaitText("waiting for a flash\n");
  EnterFlash();
  Hello();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(Request(Opcode::kBaud, BaudRequest{3000000}).error(), ErrorCode::kNone);
  // No packet comes at the new rate (the host could not reach it).
  EXPECT_EQ(SwitchesAfter(*link_, 2, std::chrono::milliseconds(5000)), std::vector<uint32_t>({3000000, 115200}));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(kBaudProbationMs));
  EXPECT_LT(took, std::chrono::milliseconds(kBaudProbationMs + 1500));
  EXPECT_EQ(Hello().version, kProtocolVersion);  // answered at the old rate
}

TEST_F(FlashServerTest, BaudOnALinkWithoutARateIsANoOpAndZeroIsRefused) {
  StartFirmware();  // the emu's link: no baud rate
  WaitText("waiting for a flash\n");
  EnterFlash();
  Hello();
  EXPECT_EQ(Request(Opcode::kBaud, BaudRequest{921600}).error(), ErrorCode::kNone);
  EXPECT_EQ(Request(Opcode::kBaud, BaudRequest{0}).error(), ErrorCode::kBadPayload);
  const uint8_t short_payload[2] = {0, 1};
  EXPECT_EQ(Request(Opcode::kBaud, std::span<const uint8_t>(short_payload)).error(), ErrorCode::kBadPayload);
  Hello();
  EXPECT_TRUE(link_->Switches().empty());
}

}  // namespace
}  // namespace qmc::flash
