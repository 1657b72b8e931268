// The firmware's application: boot, then a text console on the link.
//
// At boot it prints the board, finds and validates the committed image
// (firmware/boot.h) and starts the read passes; then every line on the link
// is a prompt (syntax in firmware/console_line.h) answered with streamed
// text and a stats line (firmware/generator.h), each prompt after the first
// on a fresh read pass (RestartReadPasses: new read errors where the board
// models them). Without a valid image it
// says why and waits, answering each line with the same news, until a flash
// — it never runs an image that failed a check. A 0xC0 byte (SLIP's END,
// never in UTF-8 text) hands the link to the flash server
// (firmware/flash_server.h) until RUN, which boots the committed image
// again into the console, or RESET, which starts over from the board line
// (a soft reset, the same on every board).
// Every line the firmware itself writes starts with "qmc-fw: ".
#pragma once

#include "hal/hal.h"

namespace qmc::firmware {

// What Run returns when the link closes (only the emu's link ever does).
enum RunOutcome : int {
  kServed = 0,   // an image was booted and served the console
  kNoImage = 3,  // no valid image: none in MRAM, or it failed a check
};

struct FirmwareOptions {
  uint32_t context = 0;  // positions the console serves (KV room reserved at boot); 0: min(the model's, 2048)
};

int Run(const hal::BoardInfo& board, hal::ByteLink& link, hal::Clock& clock, const FirmwareOptions& options = {});

}  // namespace qmc::firmware
