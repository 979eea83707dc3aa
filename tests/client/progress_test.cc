// Unit tests for client/progress.h.
#include "client/progress.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

namespace baton::client {
namespace {

using std::chrono::milliseconds;

std::string ReadAll(FILE* f) {
  std::rewind(f);
  std::string out;
  char buf[256];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  return out;
}

TEST(ProgressPrinterTest, PrintsLinesAfterTheFirstDelay) {
  FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  std::atomic<int> count{0};
  int printed = 0;
  {
    ProgressPrinter progress(
        [&](double) { return "n=" + std::to_string(count.fetch_add(1)); }, out,
        milliseconds(10), milliseconds(10));
    // Bounded wait for a few lines (no timing assertion).
    for (int i = 0; i < 500 && progress.lines_printed() < 3; ++i) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    printed = progress.lines_printed();
  }
  EXPECT_GE(printed, 3);
  const std::string text = ReadAll(out);
  EXPECT_EQ(text.rfind("progress: ", 0), 0u) << text;
  EXPECT_NE(text.find(", n=0\n"), std::string::npos) << text;
  EXPECT_NE(text.find(", n=2\n"), std::string::npos) << text;
  std::fclose(out);
}

TEST(ProgressPrinterTest, ShortRunPrintsNothing) {
  FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  bool called = false;
  {
    ProgressPrinter progress(
        [&](double) {
          called = true;
          return std::string("x");
        },
        out, std::chrono::seconds(60), std::chrono::seconds(1));
  }
  EXPECT_FALSE(called);
  EXPECT_EQ(ReadAll(out), "");
  std::fclose(out);
}

TEST(ProgressPrinterTest, EmptyLinesAreSkipped) {
  FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  std::atomic<int> calls{0};
  {
    ProgressPrinter progress(
        [&](double) {
          calls.fetch_add(1);
          return std::string();
        },
        out, milliseconds(1), milliseconds(1));
    for (int i = 0; i < 500 && calls.load() < 3; ++i) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    EXPECT_EQ(progress.lines_printed(), 0);
  }
  EXPECT_GE(calls.load(), 3);
  EXPECT_EQ(ReadAll(out), "");
  std::fclose(out);
}

}  // namespace
}  // namespace baton::client
