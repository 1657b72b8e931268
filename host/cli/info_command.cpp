// `qmc info`: what a board reports about itself: INFO (board, windows,
// slots, the committed slot and sequence) and each slot's boot record (the
// image header and section table), read over the flash protocol.
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "host/cli/commands.h"
#include "host/cli/port_options.h"
#include "host/flash/board_slots.h"
#include "host/image_summary.h"

namespace qmc::cli {
namespace {

struct InfoArgs {
  PortArgs port;
  bool json = false;
};

const char* WindowKindName(uint8_t kind) {
  static constexpr const char* kNames[] = {"SRAM", "MRAM", "ReRAM", "DRAM"};
  return kind < 4 ? kNames[kind] : "unknown";
}

nlohmann::json SlotJson(const host::flash::SlotRecord& r, const flash::InfoReply& info) {
  nlohmann::json slot = {{"slot", r.slot}, {"active", r.slot == info.active_slot}, {"boot_record_valid", r.valid()}};
  if (!r.valid()) {
    slot["problem"] = r.problem;
    return slot;
  }
  const image::Header& h = r.header;
  slot["image"] = {{"header_crc", h.header_crc},
                   {"image_size", h.image_size},
                   {"version", std::to_string(h.version_major) + "." + std::to_string(h.version_minor)},
                   {"quantizer", host::QuantizerName(static_cast<image::Quantizer>(h.quantizer))},
                   {"preset", std::string(h.preset, strnlen(h.preset, sizeof h.preset))},
                   {"tensors", h.tensor_count},
                   {"dim", h.model.dim},
                   {"layers", h.model.n_layers},
                   {"vocab", h.model.vocab_size},
                   {"max_seq_len", h.model.seq_len}};
  nlohmann::json sections = nlohmann::json::array();
  for (const image::SectionEntry& s : r.sections) {
    sections.push_back({{"kind", s.kind}, {"window", WindowKindName(s.window)}, {"window_offset", s.window_offset},
                        {"bytes", s.length}, {"crc32", s.crc32}});
  }
  slot["image"]["sections"] = sections;
  return slot;
}

void Print(const nlohmann::json& out) {
  std::printf("board %s: flash protocol %d, max payload %d bytes\n", out["board"].get<std::string>().c_str(),
              out["protocol_version"].get<int>(), out["max_payload"].get<int>());
  if (out["active_slot"].is_null()) {
    std::printf("committed: none (the board waits for a flash)\n");
  } else {
    std::printf("committed: slot %d (commit sequence %u)\n", out["active_slot"].get<int>(),
                out["commit_sequence"].get<uint32_t>());
  }
  std::printf("windows:\n");
  for (const nlohmann::json& w : out["windows"]) {
    std::printf("  %-5s %10llu bytes, write granularity %d%s", w["kind"].get<std::string>().c_str(),
                w["size"].get<unsigned long long>(), w["write_granularity"].get<int>(),
                w["non_volatile"].get<bool>() ? ", non-volatile" : "");
    if (w["slot_size"].get<uint32_t>() > 0) {
      std::printf("; slots at 0x%x and 0x%x, %u bytes each", w["slot0_offset"].get<uint32_t>(),
                  w["slot1_offset"].get<uint32_t>(), w["slot_size"].get<uint32_t>());
    }
    std::printf("\n");
  }
  for (const nlohmann::json& s : out["slots"]) {
    std::printf("slot %d%s: ", s["slot"].get<int>(), s["active"].get<bool>() ? " (committed)" : "");
    if (!s["boot_record_valid"].get<bool>()) {
      std::printf("%s\n", s["problem"].get<std::string>().c_str());
      continue;
    }
    const nlohmann::json& i = s["image"];
    std::printf("image %s, %u bytes, header_crc 0x%08x, %s%s%s, dim %d, %d layers, vocab %d, %zu sections\n",
                i["version"].get<std::string>().c_str(), i["image_size"].get<uint32_t>(),
                i["header_crc"].get<uint32_t>(), i["quantizer"].get<std::string>().c_str(),
                i["preset"].get<std::string>().empty() ? "" : ", preset ", i["preset"].get<std::string>().c_str(),
                i["dim"].get<int>(), i["layers"].get<int>(), i["vocab"].get<int>(), i["sections"].size());
  }
}

void RunInfo(const InfoArgs& args) {
  nlohmann::json out;
  try {
    Board board(args.port);
    const flash::InfoReply info = board.client().Connect();
    out = {{"board", std::string(info.board, strnlen(info.board, sizeof info.board))},
           {"protocol_version", info.version},
           {"max_payload", info.max_payload},
           {"active_slot", info.active_slot == flash::kNoActiveSlot ? nlohmann::json() : nlohmann::json(info.active_slot)},
           {"commit_sequence", info.commit_sequence}};
    nlohmann::json windows = nlohmann::json::array();
    bool slotted = false;
    for (uint8_t i = 0; i < info.window_count; ++i) {
      const flash::WindowInfo& w = info.windows[i];
      windows.push_back({{"kind", WindowKindName(w.kind)},
                         {"size", w.size},
                         {"base", w.base},
                         {"write_granularity", w.write_granularity},
                         {"needs_erase", (w.flags & flash::kWindowNeedsErase) != 0},
                         {"non_volatile", (w.flags & flash::kWindowNonVolatile) != 0},
                         {"slot0_offset", w.slot0_offset},
                         {"slot1_offset", w.slot1_offset},
                         {"slot_size", w.slot_size}});
      slotted = slotted || (w.kind == static_cast<uint8_t>(image::Window::kMram) && w.slot_size > 0);
    }
    out["windows"] = windows;
    out["slots"] = nlohmann::json::array();
    if (slotted) {
      for (uint8_t slot = 0; slot < 2; ++slot) {
        out["slots"].push_back(SlotJson(host::flash::ReadSlotRecord(board.client(), info, slot), info));
      }
    }
    board.LeaveToConsole();
    board.Finish();
  } catch (const host::IoError& e) {
    std::fprintf(stderr, "qmc info: error: %s\n", e.what());
    throw CommandFailed{kExitIoError};
  }
  if (args.json) {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    Print(out);
  }
}

}  // namespace

void AddInfoCommand(CLI::App& app) {
  auto args = std::make_shared<InfoArgs>();
  CLI::App* cmd = app.add_subcommand(
      "info", "Print what a board reports: its windows and slots, which slot is committed, and the image each "
              "slot's boot record describes. The board then goes back to its console.");
  AddPortOptions(cmd, args->port);
  cmd->add_flag("--json", args->json, "print it as JSON");
  cmd->footer(std::string(kPortHelp) +
              "\nA slot's image is described from its boot record (header and section table, CRC-checked); its "
              "sections\nare checked by the board when it commits or boots the slot.\n"
              "\nExit codes: 0 reported, 1 bad option values, 4 the port, the link or the board failed.\n"
              "\nExample:\n  qmc info --port /dev/ttyUSB0\n");
  cmd->callback([args] { RunInfo(*args); });
}

}  // namespace qmc::cli
