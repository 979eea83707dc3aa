// Client library: JsonWriter.
#include "client/json_writer.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace baton::client {

std::string JsonQuote(absl::string_view text) {
  std::string out = "\"";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        // Other control bytes must be escaped; everything else passes as is.
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

void JsonWriter::Key(absl::string_view key) {
  if (!body_.empty()) body_ += ',';
  absl::StrAppend(&body_, JsonQuote(key), ":");
}

JsonWriter& JsonWriter::AddString(absl::string_view key,
                                  absl::string_view value) {
  Key(key);
  body_ += JsonQuote(value);
  return *this;
}

JsonWriter& JsonWriter::AddInt(absl::string_view key, int64_t value) {
  Key(key);
  absl::StrAppend(&body_, value);
  return *this;
}

JsonWriter& JsonWriter::AddDouble(absl::string_view key, double value,
                                  int decimals) {
  Key(key);
  if (std::isfinite(value)) {
    body_ += absl::StrFormat("%.*f", decimals, value);
  } else {
    body_ += "null";
  }
  return *this;
}

JsonWriter& JsonWriter::AddBool(absl::string_view key, bool value) {
  Key(key);
  body_ += value ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::AddObject(absl::string_view key,
                                  const JsonWriter& object) {
  Key(key);
  body_ += object.str();
  return *this;
}

JsonWriter& JsonWriter::Merge(const JsonWriter& other) {
  if (!body_.empty() && !other.body_.empty()) body_ += ',';
  body_ += other.body_;
  return *this;
}

}  // namespace baton::client
