// Internal: OwnerExtras' deleter (out of line, so connection_state.h needs
// only the forward declaration) and InputBuffer's process-wide gauge.
#include "lib/internal/connection_extras.h"

namespace baton::internal {

std::atomic<size_t> InputBuffer::allocated_{0};

void OwnerExtrasDeleter::operator()(OwnerExtras* extras) const {
  delete extras;
}

}  // namespace baton::internal
