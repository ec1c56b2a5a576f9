// Deferred finiteness checks: the machinery behind flag_nonfinite / raise_nonfinite
// (dfluid/field_ops.hpp), shared by the operators and the step.
//
// A check enqueues one kernel that sets the byte of its site when the field holds a NaN or
// Inf; nothing waits. The bytes live in host-visible memory (ContextState::flags), so after
// any host wait that follows the checks, the host reads them for free: raise_flagged() is
// called right after such a wait (a solver's convergence read, a loss read) and throws the
// first flagged site in enqueue order. Sites are cleared when read.
#pragma once

#include <string>

#include "dfluid/context.hpp"
#include "dfluid/error.hpp"
#include "dfluid/field.hpp"

namespace dfluid::detail {

/// What a site's check is for, so that a caller can tell its own checks from earlier ones.
enum FlagTag : int {
  kFlagPlain = 0,            ///< an input or output check; its message stands as is
  kFlagProjectVelocity = 1,  ///< PressureSolver::project's velocity (the step names the parts)
  kFlagRollout = 2,          ///< a rollout's per-step cotangent check (already names its step)
};

/// The NonFiniteValue raise_flagged throws: the message of the first flagged site, and its tag.
class FlaggedNonFinite : public NonFiniteValue {
 public:
  FlaggedNonFinite(const std::string& what, int tag) : NonFiniteValue(what), tag_(tag) {}
  int tag() const noexcept { return tag_; }

 private:
  int tag_;
};

/// Registers a check site and returns the byte its kernel sets (in the memory kernels write).
/// When all ContextState::kFlagSites bytes are pending (thousands of checks without a host
/// wait), first waits once and reports them: the only wait the checks ever add.
unsigned char* register_flag_site(const Context& ctx, std::string message, int tag);
/// Marks the end of the check just enqueued (GPU: records an event on the stream, so that
/// raise_flagged can tell whether the checks have run without waiting for later work).
void flag_check_enqueued(const Context& ctx);
/// Call only after a host wait on ctx's stream that followed every pending check (on the GPU
/// path a check that has not run yet is waited for first, as a safety net; work enqueued
/// after the checks is not). Throws
/// FlaggedNonFinite for the first pending site whose byte is set; clears every pending site.
void raise_flagged(const Context& ctx);
/// flag_nonfinite (dfluid/field_ops.hpp) with a tag (cuda/core/field_ops.cpp).
template <class T>
void flag_nonfinite(const Context& ctx, const Field<T>& x, const std::string& what, int tag);
/// Pending sites (checks enqueued since the last read).
int pending_flag_sites(const Context& ctx);

}  // namespace dfluid::detail
