#include "firmware/firmware.h"

#include "common/image_reader.h"
#include "firmware/boot.h"
#include "firmware/console_line.h"
#include "firmware/flash_server.h"
#include "firmware/generator.h"
#include "firmware/line_reader.h"
#include "firmware/link_writer.h"

namespace qmc::firmware {
namespace {

// Static: on the board these are too big for a small stack.
image::ImageView g_view;
Generator g_generator;
FlashServer g_flash_server;

const char* QuantizerName(uint32_t quantizer) {
  static const char* const kNames[] = {"f32", "fp16", "rtn", "qmc", "mxint4"};
  return quantizer < sizeof kNames / sizeof kNames[0] ? kNames[quantizer] : "?";
}

void PrintStatus(LinkWriter& out, const Status& status) {
  if (status.subject == Subject::kSection) out.Text("section ").Uint(status.index).Text(": ");
  if (status.subject == Subject::kTensor) out.Text("tensor ").Uint(status.index).Text(": ");
  out.Text(status.what);
}

void PrintBoard(LinkWriter& out, const hal::BoardInfo& board) {
  out.Text("qmc-fw: board ").Text(board.name).Text(":");
  for (const hal::MemoryWindow* window : board.windows) {
    out.Text(" ").Text(hal::WindowName(window->kind())).Text(" ").Uint(window->size() >> 10).Text(" KiB");
  }
  out.Text("\n");
}

void PrintImage(LinkWriter& out, const image::ImageView& view) {
  const image::ModelConfig& m = view.model();
  out.Text("qmc-fw: image ").Text(QuantizerName(view.header().quantizer)).Text(": dim ").Uint(m.dim);
  out.Text(", ").Uint(m.n_layers).Text(" layers, ").Uint(m.n_heads).Text("/").Uint(m.n_kv_heads);
  out.Text(" heads, vocab ").Uint(m.vocab_size).Text(", seq_len ").Uint(m.seq_len).Text("; bytes:");
  for (hal::WindowKind kind : {hal::WindowKind::kMram, hal::WindowKind::kReram, hal::WindowKind::kDram}) {
    out.Text(" ").Text(hal::WindowName(kind)).Text(" ").Uint(view.WindowBytes(kind));
  }
  out.Text("\n");
}

// Boots the committed image; false (having said why) when there is nothing to run.
bool Boot(const hal::BoardInfo& board, const FirmwareOptions& options, LinkWriter& out, SlotState& slots) {
  const BootResult boot = BootImage(board, g_view);
  slots = boot.slots;
  if (boot.state == BootState::kNoImage) {
    out.Text("qmc-fw: no image: ");
    PrintStatus(out, boot.status);
    out.Text("; waiting for a flash\n");
    return false;
  }
  if (boot.fell_back) {
    out.Text("qmc-fw: newest commit rejected: ");
    PrintStatus(out, boot.status);
    out.Text("; booting commit ").Uint(boot.slots.sequence).Text("\n");
  }
  Status status = boot.status;
  if (boot.state == BootState::kReady) status = StartReadPasses(g_view, board, boot.slots.active_slot);
  if (status.ok()) status = g_generator.Init(g_view, board, boot.slots.active_slot, options.context);
  if (!status.ok()) {
    out.Text("qmc-fw: image rejected: ");
    PrintStatus(out, status);
    out.Text("; waiting for a flash\n");
    return false;
  }
  out.Text("qmc-fw: image in slot ").Uint(boot.slots.active_slot).Text(", commit ").Uint(boot.slots.sequence).Text("\n");
  PrintImage(out, g_view);
  out.Text("qmc-fw: ready: one prompt per line, optionally after steps=N ctx=N temp=T topp=P seed=S "
           "kv=f32|fp16|int8 kernel=reference|scalar|avx2|helium\n");
  return true;
}

}  // namespace

int Run(const hal::BoardInfo& board, hal::ByteLink& link, hal::Clock& clock, const FirmwareOptions& options) {
  LinkWriter out(link);
  LinkInput input(link);
  for (;;) {  // once per reset
    PrintBoard(out, board);
    SlotState slots;
    bool ready = Boot(board, options, out, slots);
    // Every prompt reads the weights afresh (a board that models read errors
    // draws them anew): the first after a boot reads the boot's pass, each
    // later one restarts the passes.
    bool fresh_read = true;
    out.Flush();

    LineReader reader(input);
    LineReader::Line line;
    for (;;) {
      const LineReader::Event event = reader.Next(line);
      if (event == LineReader::Event::kClosed) return ready ? kServed : kNoImage;
      if (event == LineReader::Event::kFlash) {
        const FlashServer::Exit exit = g_flash_server.Serve(board, input, link, slots);
        if (exit == FlashServer::Exit::kClosed) return ready ? kServed : kNoImage;
        if (exit == FlashServer::Exit::kReset) break;
        ready = Boot(board, options, out, slots);  // RUN
        fresh_read = true;
      } else if (!ready) {
        out.Text("qmc-fw: no image to run; waiting for a flash\n");
      } else if (line.too_long) {
        out.Text("qmc-fw: error: line longer than ").Uint(kMaxLineBytes).Text(" bytes\n");
      } else {
        const ConsoleLine parsed = ParseConsoleLine(line.text);
        if (parsed.error != nullptr) {
          out.Text("qmc-fw: error: ").Text(parsed.error).Text("\n");
        } else if (Status s = fresh_read ? Status::Ok() : RestartReadPasses(g_view, board, slots.active_slot); !s.ok()) {
          out.Text("qmc-fw: error: ");
          PrintStatus(out, s);
          out.Text("\n");
        } else {
          fresh_read = false;
          g_generator.Run(parsed.options, parsed.prompt, out, clock);
        }
      }
      out.Flush();
    }
  }
}

}  // namespace qmc::firmware
