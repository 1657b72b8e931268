#include "hal/emu/emu_window.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "hal/emu/cell_noise.h"

namespace qmc::hal::emu {
namespace {

bool IsVolatile(WindowKind kind) { return kind == WindowKind::kSram || kind == WindowKind::kDram; }

[[noreturn]] void Fail(const std::filesystem::path& file, const char* what) {
  throw EmuError(file.string() + ": " + what + ": " + std::strerror(errno));
}

uint8_t* Map(size_t size, int flags, int fd, const std::filesystem::path& file) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, fd, 0);
  if (p == MAP_FAILED) Fail(file, "cannot map");
  return static_cast<uint8_t*>(p);
}

}  // namespace

std::unique_ptr<EmuWindow> EmuWindow::Open(const Geometry& geometry, const std::filesystem::path& file,
                                           const ReadErrors& errors) {
  uint8_t* stored;
  uint8_t* as_read;
  if (file.empty()) {
    stored = Map(geometry.size, MAP_PRIVATE | MAP_ANONYMOUS, -1, "(anonymous)");
    as_read = stored;
  } else {
    const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) Fail(file, "cannot open");
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      Fail(file, "cannot stat");
    }
    // A new file is a blank part; a file of another size belongs to another board.
    if (st.st_size == 0 && ::ftruncate(fd, static_cast<off_t>(geometry.size)) != 0) {
      ::close(fd);
      Fail(file, "cannot size");
    }
    if (st.st_size != 0 && static_cast<uint64_t>(st.st_size) != geometry.size) {
      ::close(fd);
      throw EmuError(file.string() + ": has " + std::to_string(st.st_size) + " bytes, but this board's " +
                     WindowName(geometry.kind) + " window has " + std::to_string(geometry.size));
    }
    stored = Map(geometry.size, MAP_SHARED, fd, file);
    // Copy-on-write: untouched pages read the file; passes write only their ranges.
    as_read = errors.model == ErrorModel::kNone ? stored : Map(geometry.size, MAP_PRIVATE, fd, file);
    ::close(fd);  // the mappings stay valid
  }
  uint8_t* scratch = IsVolatile(geometry.kind) ? stored : nullptr;
  return std::unique_ptr<EmuWindow>(new EmuWindow(geometry, stored, as_read, scratch, errors));
}

EmuWindow::EmuWindow(const Geometry& geometry, uint8_t* stored, uint8_t* as_read, uint8_t* scratch,
                     const ReadErrors& errors)
    : MemoryWindow(geometry, as_read, scratch), stored_(stored), as_read_(as_read), errors_(errors) {}

EmuWindow::~EmuWindow() {
  if (as_read_ != stored_) ::munmap(as_read_, size());
  ::munmap(stored_, size());
}

void EmuWindow::Sync() {
  if (::msync(stored_, size(), MS_SYNC) != 0) {
    throw EmuError(std::string("cannot sync the ") + WindowName(kind()) + " window: " + std::strerror(errno));
  }
}

void EmuWindow::DoRead(uint32_t offset, std::span<uint8_t> out) { std::memcpy(out.data(), stored_ + offset, out.size()); }

void EmuWindow::DoWrite(uint32_t offset, std::span<const uint8_t> data) {
  if (power_cut_ != nullptr) {
    if (data.size() > power_cut_->bytes_left) {
      std::memcpy(stored_ + offset, data.data(), power_cut_->bytes_left);
      ::_exit(kPowerCutExitCode);
    }
    power_cut_->bytes_left -= data.size();
  }
  std::memcpy(stored_ + offset, data.data(), data.size());
  // The as-read copy must not keep stale bytes of pages a pass copied before.
  if (as_read_ != stored_) std::memcpy(as_read_ + offset, data.data(), data.size());
}

void EmuWindow::DoBeginReadPass(uint32_t offset, uint32_t length, uint8_t cell_bits) {
  if (as_read_ == stored_) return;
  std::memcpy(as_read_ + offset, stored_ + offset, length);  // errors on the stored bits, not on a previous pass's
  const std::span<uint8_t> range(as_read_ + offset, length);
  // Programming errors are draw 0 for good; read errors draw 1, 2, ... one per read.
  const uint64_t draw = errors_.draw == Draw::kProgram ? 0 : 1 + reads_;
  const uint64_t seed = PassSeed(DrawSeed(errors_.seed, draw), static_cast<uint32_t>(kind()), offset);
  if (errors_.model == ErrorModel::kLevelNoise) {
    ApplyLevelNoise(range, cell_bits, errors_.levels[cell_bits - 1], seed);
  } else {
    ApplyMramBitErrors({stored_ + offset, length}, range, offset, errors_.bit_error_rate, errors_.secded, seed,
                       secded_counts_);
  }
}

uint64_t EmuWindow::DriftCells(uint32_t offset, uint32_t length, uint8_t cell_bits, const LevelErrors& moved,
                               uint64_t seed) {
  const std::span<uint8_t> cells(stored_ + offset, length);
  const std::vector<uint8_t> before(cells.begin(), cells.end());
  ApplyLevelNoise(cells, cell_bits, moved, seed);
  if (as_read_ != stored_) std::memcpy(as_read_ + offset, stored_ + offset, length);
  // Changed cells: 3-bit cells ten to a 32-bit word (its top 2 bits hold
  // none), narrower ones never straddle a byte.
  const uint32_t mask = (1u << cell_bits) - 1u, unit = cell_bits == 3 ? 4 : 1;
  uint64_t changed = 0;
  for (size_t at = 0; at + unit <= length; at += unit) {
    uint32_t a = 0, b = 0;
    std::memcpy(&a, before.data() + at, unit);
    std::memcpy(&b, cells.data() + at, unit);
    for (uint32_t shift = 0; shift + cell_bits <= unit * 8; shift += cell_bits) changed += ((a ^ b) >> shift & mask) != 0;
  }
  return changed;
}

void EmuWindow::DoEndReadPasses() {
  ++reads_;
  if (as_read_ == stored_) return;
  // Dropping the private copies of a MAP_PRIVATE file mapping makes its
  // pages read the file again: the stored contents, without touching pages
  // no pass copied. Should the kernel refuse, copying does the same.
  if (::madvise(as_read_, size(), MADV_DONTNEED) != 0) std::memcpy(as_read_, stored_, size());
}

}  // namespace qmc::hal::emu
