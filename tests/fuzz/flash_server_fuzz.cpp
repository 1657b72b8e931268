// libFuzzer target: the firmware's flash server (firmware/flash_server.h)
// fed an arbitrary byte sequence as its link input, on a fresh emulated
// board (hal/emu windows, small and in memory) for every input.
// After RUN or RESET the board boots whatever is committed, as the firmware
// does, and serving resumes with the bytes left, until the input ends. The
// server must answer without touching memory outside its buffers and the
// windows; whatever it wrote, booting must not crash either. Each input is
// served twice: as it is, and with its frames' CRCs fixed.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "common/slip_frame.h"
#include "firmware/boot.h"
#include "firmware/flash_server.h"
#include "firmware/link_input.h"
#include "hal/emu/emu_board.h"
#include "hal/emu/emu_window.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

// The input, handed out in reads of whatever size the server asks for; then closed.
class InputLink final : public qmc::hal::ByteLink {
 public:
  InputLink(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  Transfer Read(std::span<uint8_t> out, uint32_t) override {
    const size_t n = std::min(out.size(), size_ - at_);
    std::copy_n(data_ + at_, n, out.begin());
    at_ += n;
    return {n, n == 0};
  }
  Transfer Write(std::span<const uint8_t> data, uint32_t) override { return {data.size(), false}; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

void Serve(std::span<const uint8_t> bytes) {
  using qmc::firmware::FlashServer;
  using qmc::hal::WindowKind;
  using qmc::hal::emu::EmuWindow;
  // The emu board's windows (hal/emu/emu_board.cpp's geometries) in anonymous
  // memory: blank for every input, at the cost of an mmap.
  constexpr size_t kBytes = size_t{qmc::fuzz::kFlashBoardWindowMib} << 20;
  std::unique_ptr<EmuWindow> windows[] = {
      EmuWindow::Open({WindowKind::kSram, kBytes, 1, false}, {}, {}),
      EmuWindow::Open({WindowKind::kMram, kBytes, 1, false}, {}, {}),
      EmuWindow::Open({WindowKind::kReram, kBytes, qmc::hal::kReramWriteBytes, false}, {}, {}),
      EmuWindow::Open({WindowKind::kDram, kBytes, 1, false}, {}, {})};
  qmc::hal::BoardInfo board{"fuzz", {windows[0].get(), windows[1].get(), windows[2].get(), windows[3].get()}};
  InputLink link(bytes.data(), bytes.size());
  qmc::firmware::LinkInput input(link);
  auto server = std::make_unique<FlashServer>();  // about 21 KiB of buffers
  qmc::image::ImageView view;
  qmc::firmware::SlotState slots = qmc::firmware::BootImage(board, view).slots;
  while (server->Serve(board, input, link, slots) != FlashServer::Exit::kClosed) {
    slots = qmc::firmware::BootImage(board, view).slots;
  }
}

// The frames of `data` with their payload lengths and CRCs made right, as
// the host would send them; bytes outside frames and frames shorter than a
// header and a CRC are dropped.
std::vector<uint8_t> WithCrcsFixed(const uint8_t* data, size_t size) {
  using namespace qmc::flash;
  std::vector<uint8_t> out, buffer(kMaxPacketBytes), frame(kMaxFrameBytes);
  SlipDecoder decoder(buffer);
  for (size_t i = 0; i < size; ++i) {
    if (decoder.Push(data[i]) != SlipDecoder::Event::kFrame) continue;
    const std::span<const uint8_t> packet = decoder.frame();
    if (packet.size() < sizeof(PacketHeader) + 4) continue;
    PacketHeader header;
    std::memcpy(&header, packet.data(), sizeof header);
    const size_t n = EncodeFrame(header, packet.subspan(sizeof header, packet.size() - sizeof header - 4), frame);
    out.insert(out.end(), frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(n));
  }
  return out;
}

}  // namespace

// The input as it is, then with its frames' CRCs fixed: mutations seldom
// keep a CRC right, and without the second pass the requests behind them
// would go unexplored.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Serve({data, size});
  Serve(WithCrcsFixed(data, size));
  return 0;
}
