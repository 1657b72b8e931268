// A freestanding DEFLATE decoder (RFC 1951) for the flash protocol's DATA
// blocks, which the host compresses independently with zlib as raw deflate
// streams (deflateInit2, windowBits -15). One-shot: the whole stream is
// decoded into `out`, which is also the history window, so back-references
// reach only as far as the block's own output.
//
// The input arrives over a noisy link, so every input bit read and every
// output byte written is bounds-checked: on any input the decoder either
// fails with a Status or returns a byte count <= out.size(), and never
// touches memory outside the two spans.
//
// Success needs the final block's end: a stream cut anywhere fails with
// kTruncated, even where its prefix decodes. The stream must end exactly
// with the byte holding the final block's last bit: bytes after it are
// rejected ("trailing bytes after the final block"), because the host never
// sends any and accepting them would hide corruption.
//
// Errors: kTooLarge "output does not fit"; kTruncated "input ends early";
// kInvalidValue for a reserved block type, a bad stored-block length
// (LEN != ~NLEN), a bad Huffman code description (oversubscribed, incomplete,
// too many lengths, repeat with no previous length, no end-of-block code), a
// bit pattern no code assigns, a length/distance symbol deflate does not
// define, trailing bytes; kOutOfBounds "distance too far back".
//
// No heap: the Huffman tables live on the stack. On the Cortex-M55 (-Os,
// measured with -fstack-usage) Inflate's frame is 2688 bytes, its deepest
// callee chain 104 more: under 2.8 KiB in all.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/status.h"

namespace qmc {

// Decodes the raw deflate stream `compressed` into `out`; returns the number
// of bytes written.
Result<size_t> Inflate(std::span<const uint8_t> compressed, std::span<uint8_t> out);

}  // namespace qmc
