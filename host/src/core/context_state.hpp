// Private shared state behind a Context: its stream and scratch memory for
// reductions (so a reduction allocates nothing once warmed up).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dfluid/context.hpp"
#include "dfluid/memory.hpp"

namespace dfluid::detail {

/// The counts behind Context::counters(). Owned by shared_ptr: the context state and every
/// Buffer allocated for the context hold it, so a free after the context died still lands
/// somewhere valid.
struct CounterBlock {
  std::atomic<std::int64_t> launches{0}, host_waits{0}, allocations{0}, frees{0},
      bytes_to_device{0}, bytes_to_host{0};
  std::atomic<std::size_t> held{0}, peak{0};
  void allocated(std::size_t bytes);
  void freed(std::size_t bytes);
};

/// Adds to s's counters (s may be null: nothing is counted). Called on the host thread
/// that issues the work (see cuda/core/exec.hpp), never inside a per-cell loop.
void count_events(ContextState* s, std::int64_t launches, std::int64_t host_waits,
                  std::int64_t bytes_to_host);
/// CPU path: counts the reduction scratch of `bytes` the GPU path allocates on its first
/// reduction (ContextState::scratch) as an allocation of s, without allocating; a no-op on
/// a GPU context (its scratch() allocates and counts for real) and once the count is made.
void count_reduction_scratch(ContextState* s, std::size_t bytes);

/// DFLUID_SYNC_LAUNCHES from the environment: unset, empty or "0" -> false, "1" -> true;
/// anything else throws InvalidArgument naming the variable and the allowed values.
bool sync_launches_from_env();

struct ContextState {
  Device device = Device::Cpu;
  int cuda_device = 0;
  void* stream = nullptr;
  bool owns_stream = false;
  Accumulation accumulation = Accumulation::Deterministic;
  bool sync_launches = false;  // DFLUID_SYNC_LAUNCHES=1 when the context was made
  std::shared_ptr<CounterBlock> counters = std::make_shared<CounterBlock>();

  std::mutex scratch_mutex;
  void* device_scratch = nullptr;  // grows on demand, through the allocator hook
  std::size_t device_scratch_bytes = 0;
  std::size_t counted_scratch_bytes = 0;  // CPU path: scratch counted, not allocated
  Allocator scratch_allocator{};          // the hook that made device_scratch
  void* pinned_scratch = nullptr;         // small pinned host buffer for reduction results
  std::size_t pinned_scratch_bytes = 0;

  // Deferred finiteness checks (core/finite_flags.hpp): one byte per pending check site, set
  // by the check's kernel when the field holds a NaN/Inf. Host-visible memory (GPU: mapped
  // pinned memory the kernels write directly), so after any host wait the host reads the
  // bytes without a copy or a wait of its own.
  static constexpr int kFlagSites = 4096;
  unsigned char* flags = nullptr;         // host address (nullptr until the first check)
  unsigned char* flags_device = nullptr;  // the address kernels write (GPU: the mapped alias)
  struct FlagSite {
    std::string message;  // the whole NonFiniteValue message
    int tag;
  };
  std::vector<FlagSite> flag_sites;  // pending checks; site i owns flags[i]
  void* flag_event = nullptr;        // GPU: cudaEvent_t recorded after the latest check
  /// Allocates the flag bytes on first use (zeroed); returns the device-side address.
  unsigned char* flag_bytes();

  // Pool behind TempBuffer: blocks in the context's memory space, each with the
  // hook that allocated it. `temp_free` holds the ones not in use.
  struct TempBlock {
    void* ptr;
    std::size_t bytes;
    Allocator allocator;
  };
  std::vector<TempBlock> temp_blocks, temp_free;
  /// A block of at least `bytes` (the smallest free one that fits, else a new one).
  TempBlock take_temp(std::size_t bytes);
  void give_temp(void* ptr);

  /// Device scratch of at least `bytes` (reused between calls on this context).
  void* scratch(std::size_t bytes);
  /// Pinned host scratch of at least `bytes`.
  void* pinned(std::size_t bytes);

  ~ContextState();
};

}  // namespace dfluid::detail
