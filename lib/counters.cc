// Public API implementation: ReactorCounters.
#include "baton/counters.h"

#include "absl/strings/str_cat.h"

namespace baton {

ReactorCounters& ReactorCounters::operator+=(const ReactorCounters& o) {
  epoll_waits += o.epoll_waits;
  events += o.events;
  promotions += o.promotions;
  rearms += o.rearms;
  stale_events += o.stale_events;
  busy_events += o.busy_events;
  accepts += o.accepts;
  rejected += o.rejected;
  closes += o.closes;
  idle_timeouts += o.idle_timeouts;
  tasks += o.tasks;
  bytes_read += o.bytes_read;
  bytes_written += o.bytes_written;
  return *this;
}

std::string ReactorCounters::ToString() const {
  return absl::StrCat(
      "epoll_waits=", epoll_waits, " events=", events,
      " promotions=", promotions, " rearms=", rearms,
      " stale_events=", stale_events, " busy_events=", busy_events,
      " accepts=", accepts, " rejected=", rejected, " closes=", closes,
      " idle_timeouts=", idle_timeouts, " tasks=", tasks,
      " bytes_read=", bytes_read, " bytes_written=", bytes_written);
}

}  // namespace baton
