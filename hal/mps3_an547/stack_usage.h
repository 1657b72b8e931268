// How deep the stack has been: the reset code paints the free stack with a
// pattern, and the deepest word that no longer holds it marks the most the
// stack has held since (exception frames included).
#pragma once

#include <cstddef>

namespace qmc::hal::an547 {

// Paints the stack below the caller's frame; the reset handler calls it
// before anything deep runs.
void PaintStack();

// Bytes between the top of the stack and the deepest word written.
size_t StackHighWaterBytes();

}  // namespace qmc::hal::an547
