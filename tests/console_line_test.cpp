// The console's kernel= option (firmware/console_line.h): which matvec
// kernel a line runs on; the other options are covered end to end by
// firmware_emu_test.
#include "firmware/console_line.h"

#include <gtest/gtest.h>

namespace qmc::firmware {
namespace {

TEST(ConsoleLine, KernelOptionNamesEachKernel) {
  EXPECT_EQ(ParseConsoleLine("kernel=reference Once").options.kernel, MatVecKernel::kReference);
  EXPECT_EQ(ParseConsoleLine("kernel=scalar Once").options.kernel, MatVecKernel::kScalar);
  EXPECT_EQ(ParseConsoleLine("kernel=avx2 Once").options.kernel, MatVecKernel::kAvx2);
  const ConsoleLine helium = ParseConsoleLine("steps=8 kernel=helium temp=0 Once upon");
  EXPECT_EQ(helium.error, nullptr);
  EXPECT_EQ(helium.options.kernel, MatVecKernel::kHelium);
  EXPECT_EQ(helium.options.steps, 8u);
  EXPECT_EQ(helium.prompt, "Once upon");
}

TEST(ConsoleLine, WithoutKernelOptionALineRunsTheBuildDefault) {
  EXPECT_EQ(ParseConsoleLine("steps=8 Once").options.kernel, DefaultMatVecKernel());
}

TEST(ConsoleLine, CtxOptionAsksForAContext) {
  EXPECT_EQ(ParseConsoleLine("Once").options.context, 0u);  // the served context
  const ConsoleLine line = ParseConsoleLine("ctx=64 steps=8 Once");
  EXPECT_EQ(line.error, nullptr);
  EXPECT_EQ(line.options.context, 64u);
  EXPECT_EQ(line.prompt, "Once");
  EXPECT_STREQ(ParseConsoleLine("ctx=0 Once").error, "ctx= takes a whole number >= 1");
}

TEST(ConsoleLine, AnUnknownKernelIsAnError) {
  const ConsoleLine parsed = ParseConsoleLine("kernel=neon Once");
  ASSERT_NE(parsed.error, nullptr);
  EXPECT_STREQ(parsed.error, "kernel= takes reference, scalar, avx2 or helium");
}

}  // namespace
}  // namespace qmc::firmware
