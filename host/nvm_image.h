// Placing an image into the emulated board's NVM windows (the files
// qmc-fw-emu boots from) the way the flasher places it on a board: each
// section at its window offset, verified, and the boot record last, since
// a whole boot record is what makes an image bootable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>

#include "common/image_reader.h"

namespace qmc::host {

// `view` was opened from `file` and has passed Validate(). Creates `dir` and
// blank window files of the emu board's sizes as needed. The old boot record
// is cleared first: the image area is a single slot, so an interrupted write
// leaves no image rather than an old boot record over new sections. Throws
// InputError when the image does not fit the board, IoError when the files
// cannot be written or do not read back.
void WriteImageToNvm(const image::ImageView& view, std::span<const uint8_t> file,
                     const std::filesystem::path& dir);

}  // namespace qmc::host
