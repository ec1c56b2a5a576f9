// Deferred finiteness checks: site registry and the read (see core/finite_flags.hpp).
#include "core/finite_flags.hpp"

#include <cstring>
#include <utility>

#include "core/context_state.hpp"
#include "core/cuda_check.hpp"
#include "dfluid/field_ops.hpp"

#if DFLUID_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace dfluid::detail {

namespace {

// Reads and clears the pending sites of s. The caller guarantees no check is still running.
void read_flags(ContextState& s) {
  const int n = int(s.flag_sites.size());
  int first = -1;
  for (int i = 0; i < n && first < 0; ++i)
    if (s.flags[i]) first = i;
  if (n > 0) std::memset(s.flags, 0, std::size_t(n));
  if (first < 0) {
    s.flag_sites.clear();
    return;
  }
  ContextState::FlagSite site = std::move(s.flag_sites[std::size_t(first)]);
  s.flag_sites.clear();
  throw FlaggedNonFinite(site.message, site.tag);
}

}  // namespace

unsigned char* register_flag_site(const Context& ctx, std::string message, int tag) {
  ContextState& s = ctx.state();
  unsigned char* base = s.flag_bytes();
  if (int(s.flag_sites.size()) == ContextState::kFlagSites) {
    ctx.synchronize();  // host wait: every byte is pending; report them before reusing any
    read_flags(s);
  }
  s.flag_sites.push_back({std::move(message), tag});
  return base + (s.flag_sites.size() - 1);
}

void flag_check_enqueued(const Context& ctx) {
#if DFLUID_WITH_CUDA
  ContextState& s = ctx.state();
  if (s.device != Device::Cuda) return;
  if (!s.flag_event) {
    DeviceGuard guard(s.cuda_device);
    cudaEvent_t e = nullptr;
    cuda_check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming),
               "cudaEventCreate for the finiteness checks");
    s.flag_event = e;
  }
  cuda_check(
      cudaEventRecord(static_cast<cudaEvent_t>(s.flag_event), static_cast<cudaStream_t>(s.stream)),
      "cudaEventRecord after a finiteness check");
#else
  (void)ctx;
#endif
}

void raise_flagged(const Context& ctx) {
  ContextState& s = ctx.state();
  if (s.flag_sites.empty()) return;
#if DFLUID_WITH_CUDA
  // The caller's wait followed the checks, so the latest one has run; should a caller break
  // that contract, wait for the checks (not for later work) rather than read bytes a running
  // check may still set. Counted: it is a wait.
  if (s.flag_event && cudaEventQuery(static_cast<cudaEvent_t>(s.flag_event)) == cudaErrorNotReady) {
    s.counters->host_waits.fetch_add(1, std::memory_order_relaxed);
    cuda_check(cudaEventSynchronize(static_cast<cudaEvent_t>(s.flag_event)),
               "cudaEventSynchronize waiting for the finiteness checks");
  }
#endif
  read_flags(s);
}

int pending_flag_sites(const Context& ctx) {
  return int(ctx.state().flag_sites.size());
}

}  // namespace dfluid::detail

namespace dfluid {

void raise_nonfinite(const Context& ctx) {
  if (detail::pending_flag_sites(ctx) == 0) return;
  ctx.synchronize();  // host wait
  detail::raise_flagged(ctx);
}

}  // namespace dfluid
