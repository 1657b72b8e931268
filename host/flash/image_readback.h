// Reading the committed image back from a board: its boot record from the
// active slot, then every section, reassembled into the image file it was
// flashed from (byte-identical: the file is the boot record, the sections
// at their file offsets and zero padding).
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <vector>

#include "host/flash/protocol_client.h"

namespace qmc::host::flash {

// The board holds no committed image, or what its active slot holds does
// not validate.
class NoImageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Progress after each READ: image bytes read so far, of `total`.
using ReadProgress = std::function<void(uint64_t done, uint64_t total)>;

// Connects, reads and validates. Throws NoImageError, or PortError and
// DeviceError when the link or the board fails.
std::vector<uint8_t> ReadBackImage(ProtocolClient& client, const ReadProgress& progress = {});

}  // namespace qmc::host::flash
