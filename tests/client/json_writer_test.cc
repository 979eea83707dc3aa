// Unit tests for client/json_writer.h.
#include "client/json_writer.h"

#include <gtest/gtest.h>

#include <limits>

namespace baton::client {
namespace {

TEST(JsonWriterTest, FieldsInOrderWithNesting) {
  JsonWriter inner;
  inner.AddDouble("p50", 1.5, 2).AddInt("n", -3);
  JsonWriter j;
  j.AddString("mode", "barrier")
      .AddBool("ok", true)
      .AddInt("threads", 200)
      .AddObject("avg_us", inner)
      .AddDouble("rate", std::numeric_limits<double>::infinity());
  EXPECT_EQ(j.str(),
            "{\"mode\":\"barrier\",\"ok\":true,\"threads\":200,"
            "\"avg_us\":{\"p50\":1.50,\"n\":-3},\"rate\":null}");
}

TEST(JsonWriterTest, EscapesStrings) {
  EXPECT_EQ(JsonQuote("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\u0001\"");
}

TEST(JsonWriterTest, MergeAppendsFields) {
  JsonWriter a, b, empty;
  a.AddInt("x", 1);
  b.AddInt("y", 2);
  EXPECT_EQ(a.Merge(empty).Merge(b).str(), "{\"x\":1,\"y\":2}");
  EXPECT_EQ(JsonWriter().Merge(b).str(), "{\"y\":2}");
  EXPECT_EQ(JsonWriter().str(), "{}");
}

}  // namespace
}  // namespace baton::client
