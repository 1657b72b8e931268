// Placing an image into the emulated board's NVM windows (the files
// qmc-fw-emu boots from), a pre-flash in the layout the flasher uses
// (common/slot_layout.h): each section in slot 0 of its window, verified,
// the boot record at slot 0's MRAM start, and the commit record last, since
// a valid commit record is what makes an image bootable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>

#include "common/image_reader.h"
#include "hal/emu/emu_board.h"

namespace qmc::host {

// `view` was opened from `file` and has passed Validate(). Creates `dir` and
// blank window files of the emu board's sizes (`sizes`: the defaults, or a
// board profile's) as needed. Both commit-record
// copies are cleared first and copy 0 is written last (sequence 1, slot 0),
// so whatever the board held before is replaced, and an interrupted write
// leaves no record naming a half-written slot. Throws InputError when the
// image does not fit a slot, IoError when the files cannot be written or do
// not read back.
void WriteImageToNvm(const image::ImageView& view, std::span<const uint8_t> file,
                     const std::filesystem::path& dir, const hal::emu::WindowSizes& sizes = {});

}  // namespace qmc::host
