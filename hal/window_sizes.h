// The memory windows' sizes, one definition for every board: the emu backend
// (hal/emu/emu_board.h) and the MPS3 AN547 linker script
// (linker/mps3_an547.ld, which includes this file through the C
// preprocessor) both take them from here, so an NVM file written by
// `qmc nvm write` boots on either and an image that fits one fits the other.
//
// Plain macros because the linker script can read nothing else; C++ code
// uses the constants below.
#pragma once

#define QMC_SRAM_WINDOW_BYTES 0x00200000  /* 2 MiB: engine arena, tokenizer and sampler workspaces */
#define QMC_MRAM_WINDOW_BYTES 0x00800000  /* 8 MiB */
#define QMC_RERAM_WINDOW_BYTES 0x04000000 /* 64 MiB */
#define QMC_DRAM_WINDOW_BYTES 0x04000000  /* 64 MiB */

#ifdef __cplusplus
#include <cstddef>
#include <cstdint>

namespace qmc::hal {

inline constexpr size_t kSramBytes = QMC_SRAM_WINDOW_BYTES;
inline constexpr size_t kMramBytes = QMC_MRAM_WINDOW_BYTES;
inline constexpr size_t kReramBytes = QMC_RERAM_WINDOW_BYTES;
inline constexpr size_t kDramBytes = QMC_DRAM_WINDOW_BYTES;

// Write granularity: MRAM and DRAM (and SRAM) take bytes; a ReRAM word of
// cells is programmed whole.
inline constexpr uint32_t kReramWriteBytes = 4;

}  // namespace qmc::hal
#endif
