// Public API implementation: ReactorCounters.
#include "baton/counters.h"

#include "absl/strings/str_cat.h"

namespace baton {

ReactorCounters& ReactorCounters::operator+=(const ReactorCounters& o) {
#define BATON_ADD_COUNTER(name, what) name += o.name;
  BATON_REACTOR_COUNTERS(BATON_ADD_COUNTER)
#undef BATON_ADD_COUNTER
  return *this;
}

std::string ReactorCounters::ToString() const {
  std::string out;
#define BATON_FORMAT_COUNTER(name, what) \
  absl::StrAppend(&out, out.empty() ? "" : " ", #name "=", name);
  BATON_REACTOR_COUNTERS(BATON_FORMAT_COUNTER)
#undef BATON_FORMAT_COUNTER
  return out;
}

}  // namespace baton
