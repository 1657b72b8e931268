// libFuzzer target: the SLIP decoder and packet parser (common/slip_frame.h)
// on arbitrary bytes, with a receive buffer from 1 byte to a whole packet.
// Every frame fits the buffer, and the input itself, encoded as one frame,
// decodes back to exactly itself.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "common/slip_frame.h"

using qmc::flash::SlipDecoder;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the buffer: a whole packet, or 1..255 bytes.
  const size_t capacity = data[0] == 0 ? qmc::flash::kMaxPacketBytes : data[0];
  const std::span<const uint8_t> bytes(data + 1, size - 1);
  std::vector<uint8_t> buffer(capacity);  // exactly the capacity: ASan sees any write past it
  SlipDecoder decoder(buffer);
  for (const uint8_t byte : bytes) {
    if (decoder.Push(byte) == SlipDecoder::Event::kNone) continue;
    if (decoder.frame().size() > capacity) std::abort();
    qmc::flash::Packet packet;
    const qmc::flash::PacketError error = qmc::flash::ParsePacket(decoder.frame(), packet);
    if (error == qmc::flash::PacketError::kNone &&
        (packet.payload.data() < decoder.frame().data() ||
         packet.payload.data() + packet.payload.size() > decoder.frame().data() + decoder.frame().size())) {
      std::abort();
    }
  }
  // Round trip: the input as one frame comes back whole (if non-empty and it fits).
  std::vector<uint8_t> frame(qmc::flash::MaxFrameBytes(bytes.size()));
  const size_t n = qmc::flash::SlipEncode(bytes, frame);
  if (n == 0 || n > frame.size()) std::abort();
  std::vector<uint8_t> whole(std::max<size_t>(bytes.size(), 1));
  SlipDecoder again(whole);
  size_t frames = 0;
  for (size_t i = 0; i < n; ++i) {
    if (again.Push(frame[i]) == SlipDecoder::Event::kNone) continue;
    ++frames;
    if (!std::equal(again.frame().begin(), again.frame().end(), bytes.begin(), bytes.end())) std::abort();
  }
  if (frames != (bytes.empty() ? 0u : 1u)) std::abort();
  return 0;
}
