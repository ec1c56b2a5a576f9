// Helpers shared by the rollout sources (rollout.cpp, rollout_checkpoint.cpp).
#pragma once

#include <cstddef>
#include <memory>

#include "dfluid/field_ops.hpp"
#include "dfluid/rollout.hpp"
#include "dfluid/simulation.hpp"
#include "rollout/rollout_slots.hpp"

namespace dfluid::detail {

/// A zero-filled state with the shape and scalar names of `s`, on ctx's memory space.
template <class T>
SmokeState<T> clone_shape(const Context& ctx, const SmokeState<T>& s) {
  return SmokeState<T>(ctx, s.grid(), s.scalar_names);
}

/// True when `s` has the grid and scalar count of `like` (its buffers can take a copy).
template <class T>
bool same_layout(const SmokeState<T>& s, const SmokeState<T>& like) {
  return !s.velocity[0].empty() && s.scalars.size() == like.scalars.size() &&
         s.grid() == like.grid();
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

namespace dfluid {

/// What a Rollout keeps between runs, so that a warm run allocates nothing: the state it
/// restores into (store-all) or advances (checkpointed), and the checkpoint slots of the
/// last checkpointed run (reused while the plan needs the same buffers).
template <class T>
struct Rollout<T>::Workspace {
  SmokeState<T> state;
  std::unique_ptr<detail::CheckpointSlots> slots;
};

}  // namespace dfluid
