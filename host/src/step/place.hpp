// Putting a freshly computed field into a state, shared by the forward step and its adjoint.
#pragma once

#include <utility>

#include "dfluid/field.hpp"
#include "dfluid/field_ops.hpp"

namespace dfluid::detail {

/// Puts `fresh` into `dst`: a swap when dst owns its memory (no copy; fresh then holds the
/// old values, scratch for the next part), a copy when dst wraps the caller's buffers, which
/// must stay where they are.
template <class T>
void place(const Context& ctx, Field<T>& dst, Field<T>& fresh) {
  if (dst.owning())
    std::swap(dst, fresh);
  else
    copy(ctx, fresh, dst);
}
template <class T>
void place(const Context& ctx, MacVelocity<T>& dst, MacVelocity<T>& fresh) {
  for (int a = 0; a < dst.dim(); ++a)
    place(ctx, dst[a], fresh[a]);
}

}  // namespace dfluid::detail
