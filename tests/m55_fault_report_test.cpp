// The fault reporter of the Cortex-M55 platform (hal/mps3_an547/
// fault_report.cpp) under QEMU: for each fault the target program
// tests/target/fault_report_main.cpp commits, the report names the
// exception and its cause, and the stacked PC lies in the function that
// faulted, as the ELF's symbol table places it. The image is built by the
// ctest fixture m55_common_freestanding (the m55 preset).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;

struct Symbol {
  uint32_t address = 0;
  uint32_t size = 0;
};

// From `arm-none-eabi-nm -S`: "ADDRESS SIZE TYPE NAME" lines.
Symbol FindSymbol(const std::string& name) {
  FILE* nm = ::popen("arm-none-eabi-nm -S " QMC_FAULT_REPORT_ELF, "r");
  Symbol symbol;
  char line[512];
  while (nm != nullptr && std::fgets(line, sizeof line, nm) != nullptr) {
    std::istringstream fields(line);
    std::string address, size, type, symbol_name;
    if (fields >> address >> size >> type >> symbol_name && symbol_name == name) {
      symbol = {static_cast<uint32_t>(std::stoul(address, nullptr, 16)),
                static_cast<uint32_t>(std::stoul(size, nullptr, 16))};
    }
  }
  if (nm != nullptr) ::pclose(nm);
  return symbol;
}

uint32_t HexField(const std::string& report, const std::string& key) {
  const size_t at = report.find(" " + key + "=0x");
  return at == std::string::npos ? 0 : static_cast<uint32_t>(std::stoul(report.substr(at + key.size() + 4, 8), nullptr, 16));
}

class M55FaultReport : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(QMC_FAULT_REPORT_ELF)) << QMC_FAULT_REPORT_ELF
                                                  << " is missing: the m55_common_freestanding fixture builds it";
  }
  void TearDown() override { fs::remove(out_); }

  // Sends `command` to the program and returns its fault report line. The
  // program halts after the report and QEMU would run on, so QEMU is
  // stopped once the line is complete, or after 30 s without one.
  std::string FaultReport(char command) {
    out_ = fs::path(::testing::TempDir()) / ("qmc_m55_fault_" + std::to_string(::getpid()) + command + ".txt");
    const std::string script =
        std::string("printf ") + command +
        " | qemu-system-arm -M mps3-an547 -display none -monitor none -serial stdio -kernel " QMC_FAULT_REPORT_ELF
        " >" + out_.string() + " 2>/dev/null & qemu=\\$!; " +
        "for i in \\$(seq 300); do grep -q 'LR=0x[0-9a-f]\\{8\\}$' " + out_.string() +
        " && break; sleep 0.1; done; kill \\$qemu";
    EXPECT_EQ(std::system(("bash -c \"" + script + "\"").c_str()), 0);
    std::ifstream in(out_);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("qmc-fw: fault: ", 0) == 0) return line;
    }
    return {};
  }

  // The report's PC lies in `function`.
  void ExpectPcIn(const std::string& report, const std::string& function) {
    const Symbol symbol = FindSymbol(function);
    ASSERT_GT(symbol.size, 0u) << function << " is not in " << QMC_FAULT_REPORT_ELF;
    const uint32_t pc = HexField(report, "PC");
    EXPECT_GE(pc, symbol.address) << report;
    EXPECT_LT(pc, symbol.address + symbol.size) << report;
  }

  fs::path out_;
};

TEST_F(M55FaultReport, ABusFaultNamesTheAddress) {
  const std::string report = FaultReport('b');
  EXPECT_EQ(report.rfind("qmc-fw: fault: BusFault (PRECISERR) CFSR=", 0), 0u) << report;
  EXPECT_EQ(HexField(report, "BFAR"), 0xF0000000u) << report;
  ExpectPcIn(report, "FaultLoadUnmapped");
}

TEST_F(M55FaultReport, AStackOverflowIsCaughtByTheStackLimit) {
  const std::string report = FaultReport('s');
  EXPECT_EQ(report.rfind("qmc-fw: fault: UsageFault (STKOF) CFSR=", 0), 0u) << report;
  ExpectPcIn(report, "FaultRecurse");
}

TEST_F(M55FaultReport, AnUndefinedInstruction) {
  const std::string report = FaultReport('u');
  EXPECT_EQ(report.rfind("qmc-fw: fault: UsageFault (UNDEFINSTR) CFSR=", 0), 0u) << report;
  ExpectPcIn(report, "FaultUndefined");
}

}  // namespace
