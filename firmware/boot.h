// Finding the committed image: its boot record (header and section table)
// sits at MRAM offset 0 and is written last by the flasher, so a whole,
// CRC-valid boot record means the image is committed. Each section then
// maps in place at its offset in its window, and every section CRC, the
// tensor directory and the tokenizer are checked before anything runs.
#pragma once

#include "common/image_reader.h"
#include "common/status.h"
#include "hal/hal.h"

namespace qmc::firmware {

enum class BootState {
  kReady,     // `view` maps a validated image
  kNoImage,   // MRAM holds no boot record (a blank or erased part)
  kRejected,  // a boot record is there but the image fails a check (`status` says which)
};

struct BootResult {
  BootState state;
  Status status;
};

BootResult BootImage(const hal::BoardInfo& board, image::ImageView& view);

// Declares every blob the engine reads as data (codes, dense values, scales,
// norms, biases) to its window for a read pass, so read errors the board
// models apply from here on; outlier tables, the directory and the
// tokenizer are structure and stay exact. Call after validation: CRCs are
// over the stored bits.
Status StartReadPasses(const image::ImageView& view, const hal::BoardInfo& board);

}  // namespace qmc::firmware
