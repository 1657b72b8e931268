#include "hal/mps3_an547/stack_usage.h"

#include <cstdint>

// Defined by linker/mps3_an547.ld.
extern "C" uint32_t __stack_limit[], __stack_top[];

namespace qmc::hal::an547 {
namespace {

constexpr uint32_t kPaint = 0x5AC3A55Cu;

}  // namespace

void PaintStack() {
  // Everything below the stack pointer is free (AAPCS has no red zone), but
  // the compiler may read sp before this function's own prologue has pushed
  // its frame (it did at -O3), so stop a margin short of it.
  constexpr uint32_t kMarginWords = 64;
  uint32_t* sp;
  __asm volatile("mov %0, sp" : "=r"(sp));
  for (volatile uint32_t* word = __stack_limit; word + kMarginWords < sp; ++word) *word = kPaint;
}

size_t StackHighWaterBytes() {
  const uint32_t* word = __stack_limit;
  while (word < __stack_top && *word == kPaint) ++word;
  return static_cast<size_t>(reinterpret_cast<uintptr_t>(__stack_top) - reinterpret_cast<uintptr_t>(word));
}

}  // namespace qmc::hal::an547
