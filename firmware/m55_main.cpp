// qmc-fw-m55: the firmware on the Cortex-M55 of the MPS3 AN547 (QEMU's
// mps3-an547). The link is UART0; the windows are memory at the addresses
// linker/mps3_an547.ld gives them, where toolchain/qemu-m55.sh loads the NVM
// files `qmc nvm write` makes. The startup code calls main.
#include "firmware/firmware.h"
#include "hal/mps3_an547/an547_board.h"
#include "hal/mps3_an547/cmsdk_uart.h"
#include "hal/mps3_an547/registers.h"
#include "hal/mps3_an547/startup.h"
#include "hal/mps3_an547/systick_clock.h"

int main() {
  qmc::hal::an547::SysTickClock clock;
  clock.Start();
  qmc::hal::an547::CmsdkUart uart(qmc::hal::an547::kUart0, clock);
  qmc::hal::an547::An547Board board;
  qmc::firmware::Run(board.info(), uart, clock);
  qmc::hal::an547::Halt();  // not reached: a UART never closes
}
