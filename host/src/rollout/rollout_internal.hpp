// Helpers shared by the rollout sources (rollout.cpp, rollout_checkpoint.cpp).
#pragma once

#include <cstddef>

#include "dfluid/field_ops.hpp"
#include "dfluid/simulation.hpp"

namespace dfluid::detail {

/// A zero-filled state with the shape and scalar names of `s`, on ctx's memory space.
template <class T>
SmokeState<T> clone_shape(const Context& ctx, const SmokeState<T>& s) {
  return SmokeState<T>(ctx, s.grid(), s.scalar_names);
}

/// dst <- src: velocity, every scalar and the pressure (enqueued on ctx's stream).
template <class T>
void copy_state(const Context& ctx, const SmokeState<T>& src, SmokeState<T>& dst) {
  copy(ctx, src.velocity, dst.velocity);
  for (std::size_t i = 0; i < src.scalars.size(); ++i)
    copy(ctx, src.scalars[i], dst.scalars[i]);
  copy(ctx, src.pressure, dst.pressure);
}

/// Sum over the components of <a[d], b[d]> (deterministic, in double).
template <class T>
double dot_mac(const Context& ctx, const MacVelocity<T>& a, const MacVelocity<T>& b) {
  double s = 0;
  for (int d = 0; d < a.dim(); ++d)
    s += dot(ctx, a[d], b[d]);
  return s;
}

}  // namespace dfluid::detail
