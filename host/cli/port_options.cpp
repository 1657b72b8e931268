#include "host/cli/port_options.h"

#include "host/checkpoint.h"
#include "host/flash/port_url.h"
#include "host/flash/reset_sequence.h"
#include "host/flash/tty_port.h"

namespace qmc::cli {
namespace {

constexpr uint32_t kDefaultBaud = 115200;

std::vector<std::string> Names(std::span<const char* const> names) { return {names.begin(), names.end()}; }

}  // namespace

void AddPortOptions(CLI::App* cmd, PortArgs& args) {
  cmd->add_option("--port", args.port,
                  "the board's link: exec:COMMAND, ftdi://VID:PID[/SERIAL][:IF] or a tty path")
      ->required();
  cmd->add_option("--baud", args.baud,
                  "baud rate of a serial link (tty, FTDI; default 115200); on an exec: link, the rate the "
                  "program's link carries (e.g. an emulated UART), so timeouts allow for it")
      ->check(CLI::Range(300u, 12000000u));
  cmd->add_option("--baud-fast", args.baud_fast,
                  "after HELLO, ask the board to switch to this rate and confirm with a HELLO there; when that "
                  "fails, go back to --baud (the board does too). The board returns to --baud when the command "
                  "ends. A no-op on exec: links")
      ->check(CLI::Range(300u, 12000000u));
  cmd->add_option("--before", args.before, "reset sequence on DTR/RTS before connecting (tty, ftdi:// ports)")
      ->check(CLI::IsMember(Names(host::flash::kBeforeResets)))
      ->default_val("no_reset");
  cmd->add_option("--after", args.after, "reset sequence on DTR/RTS when done (tty, ftdi:// ports)")
      ->check(CLI::IsMember(Names(host::flash::kAfterResets)))
      ->default_val("no_reset");
  cmd->add_option("--retries", args.attempts,
                  "times one request is sent before the link counts as failed (timeouts scale with the "
                  "request's size and the baud rate)")
      ->default_val(6)
      ->check(CLI::Range(1, 100));
}

Board::Board(const PortArgs& args) : args_(args) {
  const host::flash::PortUrl url = host::flash::ParsePortUrl(args.port);
  const std::vector<host::flash::LineStep> before = host::flash::BeforeResetSteps(args.before);
  const std::vector<host::flash::LineStep> after = host::flash::AfterResetSteps(args.after);
  if (args.baud_fast && url.kind == host::flash::PortUrl::Kind::kTty && !host::flash::TtyBaudSupported(*args.baud_fast)) {
    throw host::InputError("--baud-fast " + std::to_string(*args.baud_fast) +
                           " is not a rate a tty supports (9600 ... 4000000)");
  }
  port_ = host::flash::OpenPort(url, args.baud);
  host::flash::CheckCanReset(*port_, before, "--before " + args.before);
  host::flash::CheckCanReset(*port_, after, "--after " + args.after);
  host::flash::RunResetSteps(*port_, before);
  client_ = std::make_unique<host::flash::ProtocolClient>(*port_, args.attempts);
  if (args.baud_fast) client_->RequestFastBaud(args.baud.value_or(kDefaultBaud), *args.baud_fast);
}

Board::~Board() = default;

void Board::Finish() {
  client_->RestoreBaud();
  host::flash::RunResetSteps(*port_, host::flash::AfterResetSteps(args_.after));
}

void Board::LeaveToConsole() {
  try {
    client_->Call(qmc::flash::Opcode::kRun, std::span<const uint8_t>());
  } catch (const host::flash::DeviceError& e) {
    if (e.code() != qmc::flash::ErrorCode::kNoImage) throw;
  }
}

}  // namespace qmc::cli
