// Retention drift of the emulated ReRAM (docs/device-model.md, "Retention
// drift"): over time a programmed MLC cell's conductance relaxes, and some
// cells end up sensed one level off, for good. Unlike read and programming
// errors (hal/emu/cell_noise.h, applied to a read view), drift changes the
// stored cells: the window file changes, so the boot's section CRC check
// sees it and the board falls back to the other slot or waits for a flash.
//
// The model, per cell mode, from the device profile's drift_per_hour
// {p_down, p_up} rates a and b: after t hours a cell has moved one level
// with probability 1 − e^−(a+b)t, down with share a / (a + b); moves of two
// levels or more are not modelled, and the lowest and highest levels clamp
// as for read errors. Cells drift independently.
#pragma once

#include <cstdint>

#include "common/image_reader.h"
#include "hal/emu/device_profile.h"
#include "hal/emu/emu_window.h"

namespace qmc::hal::emu {

// The probabilities that a cell has moved down / up after `hours`.
LevelErrors DriftAfter(const LevelErrors& per_hour, double hours);

// Ages the cells of every tensor's ReRAM codes of `view` (an image mapped
// from the slot at `slot_offset` of `reram`) by `hours`, each tensor in its
// cell mode; the same seed gives the same moves. Returns the cells that
// changed.
uint64_t AgeImageCells(EmuWindow& reram, uint32_t slot_offset, const image::ImageView& view,
                       const DeviceProfile& device, double hours, uint64_t seed);

}  // namespace qmc::hal::emu
