#include "common/status.h"

namespace qmc {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kTruncated: return "truncated";
    case StatusCode::kBadMagic: return "bad magic";
    case StatusCode::kBadVersion: return "unsupported version";
    case StatusCode::kBadChecksum: return "checksum mismatch";
    case StatusCode::kOutOfBounds: return "out of bounds";
    case StatusCode::kOverlap: return "overlap";
    case StatusCode::kInvalidValue: return "invalid value";
    case StatusCode::kMissing: return "missing";
    case StatusCode::kShapeMismatch: return "shape mismatch";
    case StatusCode::kTooLarge: return "too large";
  }
  return "unknown";
}

}  // namespace qmc
