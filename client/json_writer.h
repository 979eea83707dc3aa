// Client library header: JsonWriter, builds one flat-or-nested JSON object
// for the bench's --json summary line.
#ifndef BATON_CLIENT_JSON_WRITER_H_
#define BATON_CLIENT_JSON_WRITER_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace baton::client {

// Fields appear in the order added. Keys are written as given (callers use
// plain identifiers); string values are escaped, so an error message with
// quotes or control bytes still yields valid JSON. Not a general serializer:
// no arrays, no duplicate-key checks.
class JsonWriter {
 public:
  JsonWriter& AddString(absl::string_view key, absl::string_view value);
  JsonWriter& AddInt(absl::string_view key, int64_t value);
  // `decimals` digits after the point; NaN and infinities become null.
  JsonWriter& AddDouble(absl::string_view key, double value, int decimals = 3);
  JsonWriter& AddBool(absl::string_view key, bool value);
  JsonWriter& AddObject(absl::string_view key, const JsonWriter& object);
  // Appends `other`'s fields to this object's.
  JsonWriter& Merge(const JsonWriter& other);

  // The object, "{...}", without a trailing newline.
  std::string str() const { return "{" + body_ + "}"; }

 private:
  void Key(absl::string_view key);

  std::string body_;
};

// `text` as a JSON string literal, quotes included.
std::string JsonQuote(absl::string_view text);

}  // namespace baton::client

#endif  // BATON_CLIENT_JSON_WRITER_H_
