// Helpers shared by the tests that count what work costs (Context::counters()).
#pragma once

#include <utility>

#include "dfluid/context.hpp"

namespace dfluid::test {

/// b - a for the event counts (bytes_held and peak_bytes are b's).
inline ContextCounters counters_delta(const ContextCounters& a, const ContextCounters& b) {
  ContextCounters d = b;
  d.launches -= a.launches;
  d.host_waits -= a.host_waits;
  d.allocations -= a.allocations;
  d.frees -= a.frees;
  d.bytes_to_device -= a.bytes_to_device;
  d.bytes_to_host -= a.bytes_to_host;
  return d;
}

/// The events of f() on ctx (the counters are not reset: peak_bytes is the context's so far).
template <class F>
ContextCounters events_of(const Context& ctx, F&& f) {
  const ContextCounters before = ctx.counters();
  std::forward<F>(f)();
  return counters_delta(before, ctx.counters());
}

}  // namespace dfluid::test
