// Tests for the Reactor facade itself (lib/reactor.cc): its argument checks.
// What the facade forwards to the core is tested next to the core's files,
// tests/lib/internal/<file>_test.cc for lib/internal/<file>.cc.
#include "baton/reactor.h"

#include <gtest/gtest.h>

namespace baton {
namespace {

TEST(ReactorTest, CreateRejectsBadOptions) {
  ReactorOptions o;
  o.threads = -1;
  EXPECT_FALSE(Reactor::Create(o).ok());
  o = ReactorOptions();
  o.max_events = 0;
  EXPECT_FALSE(Reactor::Create(o).ok());
  o = ReactorOptions();
  o.read_buffer_size = 1;
  EXPECT_FALSE(Reactor::Create(o).ok());
}

}  // namespace
}  // namespace baton
