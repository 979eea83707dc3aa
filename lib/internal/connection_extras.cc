// Internal: OwnerExtras' deleter (out of line, so connection_state.h needs
// only the forward declaration).
#include "lib/internal/connection_extras.h"

namespace baton::internal {

void OwnerExtrasDeleter::operator()(OwnerExtras* extras) const {
  delete extras;
}

}  // namespace baton::internal
