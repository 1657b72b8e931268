// Flash experiment on the emulated board (exec:qmc-fw-emu, the same path a
// UART takes): per model (qmc, 3 bits), a fresh flash with and without
// deflate (image KiB/s and bytes on the wire), a re-flash of the unchanged
// image and of one with one tensor changed (layer 0's wq perturbed). The
// emulated link is a socket, so its throughput is the host's and the
// firmware's CPU time; the time a UART would take follows from the wire
// bytes (10 bits per byte). Prints a markdown table.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "host/atomic_file.h"
#include "host/flash/exec_port.h"
#include "host/flash/flasher.h"
#include "tests/perturbed_checkpoint.h"

namespace {

namespace fs = std::filesystem;
using namespace qmc::host::flash;

const fs::path kShared = QMC_SHARED_DIR;
constexpr double kUartBaud = 921600;

struct Model {
  std::string name;
  fs::path checkpoint;
  fs::path tokenizer;
};

void Pack(const fs::path& checkpoint, const fs::path& tokenizer, const fs::path& out) {
  const std::string command = std::string(QMC_CLI) + " pack " + checkpoint.string() + " --tokenizer " +
                              tokenizer.string() + " --scheme qmc --bits 3 -q -o " + out.string() + " >/dev/null";
  if (std::system(command.c_str()) != 0) throw std::runtime_error("qmc pack failed for " + checkpoint.string());
}

FlashSummary Flash(const fs::path& image_path, const fs::path& nvm, bool compress) {
  fs::create_directories(nvm);
  const std::vector<uint8_t> image = qmc::host::ReadWholeFile(image_path);
  const qmc::Result<qmc::image::ImageView> view = qmc::image::ImageView::OpenFile(image);
  if (!view.ok()) throw std::runtime_error("invalid image " + image_path.string());
  ExecPort port(std::string(QMC_FW_EMU) + " --nvm " + nvm.string());
  ProtocolClient client(port, 6);
  FlashOptions options;
  options.compress = compress;
  return FlashImage(client, image, view.value(), options);
}

void Row(const std::string& model, const std::string& what, const FlashSummary& s) {
  std::printf("| %s | %s | %llu | %llu | %llu | %llu | %llu | %.3f | %.0f | %.2f |\n", model.c_str(),
              what.c_str(), static_cast<unsigned long long>(s.image_bytes), static_cast<unsigned long long>(s.sent),
              static_cast<unsigned long long>(s.copied), static_cast<unsigned long long>(s.skipped), static_cast<unsigned long long>(s.link.bytes_sent),
              s.seconds, static_cast<double>(s.image_bytes) / 1024.0 / s.seconds,
              static_cast<double>(s.link.bytes_sent) * 10 / kUartBaud);
}

}  // namespace

int main() {
  const std::vector<Model> models = {
      {"stories260K", kShared / "models/stories260K.bin", kShared / "models/tok512.bin"},
      {"kjv6M", kShared / "models/kjv6M.bin", kShared / "models/kjv_tok2048.bin"},
  };
  const fs::path dir = fs::temp_directory_path() / ("qmc_flash_bench_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::printf("| model | flash | image bytes | sent | copied on board | already in place | wire bytes out | s | "
              "image KiB/s | s at 921600 baud (from wire bytes) |\n|---|---|---|---|---|---|---|---|---|---|\n");
  int status = 0;
  try {
    for (const Model& m : models) {
      if (!fs::exists(m.checkpoint)) {
        std::printf("| %s | skipped: %s is missing | | | | | | | | |\n", m.name.c_str(), m.checkpoint.c_str());
        continue;
      }
      const fs::path a = dir / (m.name + ".qmc"), b = dir / (m.name + "_one_tensor.qmc");
      const fs::path perturbed = dir / (m.name + "_one_tensor.bin");
      qmc::testing::WritePerturbedCheckpoint(m.checkpoint, perturbed);
      Pack(m.checkpoint, m.tokenizer, a);
      Pack(perturbed, m.tokenizer, b);
      Row(m.name, "fresh, deflate", Flash(a, dir / (m.name + "_nvm_deflate"), true));
      Row(m.name, "fresh, raw", Flash(a, dir / (m.name + "_nvm_raw"), false));
      Row(m.name, "unchanged re-flash", Flash(a, dir / (m.name + "_nvm_deflate"), true));
      Row(m.name, "one tensor changed", Flash(b, dir / (m.name + "_nvm_deflate"), true));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flash_bench: %s\n", e.what());
    status = 1;
  }
  fs::remove_all(dir);
  return status;
}
