#include "common/flash_protocol.h"

namespace qmc::flash {

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNone: return "none";
    case ErrorCode::kBadFrame: return "bad frame";
    case ErrorCode::kUnknownOpcode: return "unknown opcode";
    case ErrorCode::kBadPayload: return "bad payload";
    case ErrorCode::kOutOfRange: return "out of range";
    case ErrorCode::kAlignment: return "misaligned";
    case ErrorCode::kProtected: return "protected";
    case ErrorCode::kNotBegun: return "not begun";
    case ErrorCode::kInflate: return "inflate failed";
    case ErrorCode::kLengthMismatch: return "length mismatch";
    case ErrorCode::kWriteFailed: return "write failed";
    case ErrorCode::kImageInvalid: return "image invalid";
    case ErrorCode::kHeaderMismatch: return "header mismatch";
    case ErrorCode::kNoImage: return "no image";
  }
  return "unknown error";
}

}  // namespace qmc::flash
