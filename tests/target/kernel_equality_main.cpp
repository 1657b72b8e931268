// kernel-equality-m55: the kernel-equality check (tests/kernel_equality) on
// the Cortex-M55, under QEMU. It boots the image in the NVM windows as the
// firmware does (firmware/boot.h), runs every tensor through the Helium and
// the scalar kernel against the reference, says on UART0 how each did, and
// halts:
//
//   kernel-equality: blk.0.ffn_gate.weight 40x97 helium=0.031 scalar=0.027 cycles reference=8432 scalar=2310 helium=610
//   kernel-equality: PASS 12 tensors
//
// helium= and scalar= are the worst |y − y_ref| / Σ|w·x| over the tensor's
// rows as a fraction of the tolerance (pass: ≤ 1). cycles are one matvec of
// the tensor by each kernel on the board's clock (under QEMU with
// -icount shift=0: instructions / 31.25, see hal/mps3_an547/systick_clock.h).
#include <cstddef>
#include <span>

#include "common/image_reader.h"
#include "common/matvec.h"
#include "firmware/boot.h"
#include "firmware/link_writer.h"
#include "hal/mps3_an547/an547_board.h"
#include "hal/mps3_an547/cmsdk_uart.h"
#include "hal/mps3_an547/registers.h"
#include "hal/mps3_an547/startup.h"
#include "hal/mps3_an547/systick_clock.h"
#include "tests/kernel_equality/kernel_equality.h"

namespace {

using qmc::MatVecKernel;
using qmc::firmware::LinkWriter;
namespace ke = qmc::kernel_equality;

// Fractions of the tolerance with three decimals; a NaN or infinite
// error prints as "inf".
void PrintWorst(LinkWriter& out, double worst) {
  if (worst > 1e6) {
    out.Text("inf");
  } else {
    out.Fixed(worst / ke::kTolerance, 3);
  }
}

uint64_t MatVecCycles(const qmc::image::ImageView& view, uint32_t index, MatVecKernel kernel, const ke::Scratch& s,
                      qmc::hal::Clock& clock) {
  const qmc::image::TensorEntry t = view.tensor(index);
  const uint64_t start = clock.Cycles();
  qmc::MatVec(view, t, s.x.data(), s.y.data(), s.row.data(), kernel);
  return clock.Cycles() - start;
}

// Carves the check's buffers from the SRAM window (the arena the firmware
// would use); false when they do not fit.
bool CarveScratch(const qmc::hal::BoardInfo& board, const qmc::image::ImageView& view, ke::Scratch& scratch) {
  const std::span<uint8_t> sram = board.window(qmc::hal::WindowKind::kSram).scratch();
  const size_t cols = ke::MaxCols(view), rows = ke::MaxRows(view);
  if ((2 * cols + 2 * rows) * sizeof(float) > sram.size()) return false;
  auto* floats = reinterpret_cast<float*>(sram.data());
  scratch = {{floats, cols}, {floats + cols, cols}, {floats + 2 * cols, rows}, {floats + 2 * cols + rows, rows}};
  return true;
}

bool CheckImage(const qmc::hal::BoardInfo& board, LinkWriter& out, qmc::hal::Clock& clock) {
  qmc::image::ImageView view;
  const qmc::firmware::BootResult boot = qmc::firmware::BootImage(board, view);
  if (boot.state != qmc::firmware::BootState::kReady) {
    out.Text("kernel-equality: FAIL no valid image: ").Text(boot.status.what).Text("\n");
    return false;
  }
  ke::Scratch scratch;
  if (!CarveScratch(board, view, scratch)) {
    out.Text("kernel-equality: FAIL the buffers do not fit the SRAM window\n");
    return false;
  }
  bool pass = true;
  for (uint32_t i = 0; i < view.tensor_count(); ++i) {
    const qmc::image::TensorEntry t = view.tensor(i);
    out.Text("kernel-equality: ").Text(t.name).Text(" ").Uint(t.rows).Text("x").Uint(t.cols);
    for (const auto& [kernel, name] : {std::pair{MatVecKernel::kHelium, " helium="}, {MatVecKernel::kScalar, " scalar="}}) {
      const ke::TensorResult result = ke::CheckTensor(view, i, kernel, i, scratch);
      out.Text(name);
      PrintWorst(out, result.worst);
      if (!result.pass) out.Text(" (row ").Uint(result.worst_row).Text(" FAILS)");
      pass = pass && result.pass;
    }
    out.Text(" cycles");
    for (const auto& [kernel, name] : {std::pair{MatVecKernel::kReference, " reference="},
                                       {MatVecKernel::kScalar, " scalar="},
                                       {MatVecKernel::kHelium, " helium="}}) {
      out.Text(name).Uint(MatVecCycles(view, i, kernel, scratch, clock));
    }
    out.Text("\n");
    out.Flush();
  }
  out.Text("kernel-equality: ").Text(pass ? "PASS " : "FAIL ").Uint(view.tensor_count()).Text(" tensors\n");
  return pass;
}

}  // namespace

int main() {
  qmc::hal::an547::SysTickClock clock;
  clock.Start();
  qmc::hal::an547::CmsdkUart uart(qmc::hal::an547::kUart0, clock);
  qmc::hal::an547::An547Board board;
  LinkWriter out(uart);
  CheckImage(board.info(), out, clock);
  out.Flush();
  qmc::hal::an547::Halt();
}
