// The memory behind a checkpointed rollout's slots: what the Store / Restore /
// Prefetch / Free actions of a checkpoint::Plan (dfluid/checkpoint/plan.hpp) copy to
// and from. Knows bytes, levels and streams, never fluids: a state is handed over as
// the list of its contiguous fields (StateSegment), and every slot holds those bytes
// packed one after the other.
//
// Levels:
//  Device  one buffer per slot in the context's memory space (through the allocator
//          hook, counted on the context); copies are enqueued on the context's stream.
//  Host    one buffer per slot in host memory: pinned (cudaMallocHost) on the CUDA path,
//          through the allocator hook on the CPU path.
//  Disk    one file per slot, "slot-<k>.state", in a fresh directory
//          "dfluid-checkpoint-<id>-<n>" created under the parent directory given (the
//          system temporary directory when empty). The directory and its files are
//          removed by finish() at the end of each run. File I/O goes through one host "bounce"
//          buffer (pinned on the CUDA path) and runs on a background thread, one operation at a
//          time; its errors (dfluid::Error naming the file) surface at the next Disk
//          action or fence(Disk).
//
// Asynchronous copies (executor.hpp). With `staging` (the plan budgets one extra device
// state for it) Host and Disk stores copy the current state into a device staging
// buffer on the context's stream and return; the transfer to pinned memory runs on a
// separate copy stream, ordered by events (on the CPU path both "streams" are plain
// memcpy, so the same bookkeeping runs synchronously). A Host prefetch copies the slot
// into the staging buffer on the copy stream, and the restore that follows copies the
// staging buffer into the state after waiting for that event. A Disk prefetch reads the
// file into the bounce buffer on the background thread; the restore waits for it. A
// restore without a prefetch waits for the slot's own store. Without `staging` Host
// copies go straight between the state and the slot on the context's stream, and Disk
// stores/restores block (the stream is synchronized before the file is written).
// fence(Host) waits for the copy stream, fence(Disk) for the background thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "dfluid/checkpoint/plan.hpp"
#include "dfluid/context.hpp"
#include "dfluid/memory.hpp"

namespace dfluid::detail {

/// One contiguous field of a state, in the context's memory space.
struct StateSegment {
  void* data = nullptr;
  std::size_t bytes = 0;
};

/// The buffers a plan needs: the slots it stores into per level (the highest slot index it
/// uses + 1; Disk: files, no buffer), the staging buffer and the disk bounce buffer.
struct SlotNeeds {
  std::size_t state_bytes = 0;
  checkpoint::SlotCounts slots;
  bool staging = false;
  bool operator==(const SlotNeeds& o) const {
    return state_bytes == o.state_bytes && slots.device == o.slots.device &&
           slots.host == o.slots.host && slots.disk == o.slots.disk && staging == o.staging;
  }
};
/// What `plan` stores into (its Store actions) and whether it stages.
SlotNeeds slot_needs(const checkpoint::Plan& plan);

class CheckpointSlots {
 public:
  /// Allocates every buffer `needs` asks for, now, so that nothing is allocated once the
  /// rollout runs and a lack of memory shows before its first step: Device slots and the
  /// staging buffer in the context's memory space, counted on its counters (device memory);
  /// Host slots (pinned on the CUDA path) and the disk bounce buffer in host memory, not
  /// counted there. Each level is checked against available_memory() first. A failure
  /// throws InvalidArgument naming the level, its bytes and `device_budget` / `host_budget`
  /// (how the caller names the budget behind that level, e.g. "budget.host_bytes = 8.00
  /// GiB"), with the fix. The object is reused by later runs with the same needs
  /// (begin()/finish()).
  CheckpointSlots(const Context& ctx, const SlotNeeds& needs, const std::string& device_budget,
                  const std::string& host_budget);
  /// finish(), then frees the buffers.
  ~CheckpointSlots();
  const SlotNeeds& needs() const { return needs_; }
  /// Starts a run: every slot empty; `use_disk`: creates the disk directory (throws
  /// dfluid::Error naming it when that fails).
  void begin(bool use_disk, const std::string& disk_parent);
  /// Ends a run: waits for every copy in flight (errors are dropped here: fence() reports
  /// them) and removes the disk directory. The buffers stay for the next run.
  void finish() noexcept;
  CheckpointSlots(const CheckpointSlots&) = delete;
  CheckpointSlots& operator=(const CheckpointSlots&) = delete;

  void store(checkpoint::Level level, std::int32_t slot, const std::vector<StateSegment>& state);
  void restore(checkpoint::Level level, std::int32_t slot, const std::vector<StateSegment>& state);
  void prefetch(checkpoint::Level level, std::int32_t slot);
  void release(checkpoint::Level level, std::int32_t slot);
  /// Waits for the level's asynchronous copies; rethrows a background I/O error.
  void fence(checkpoint::Level level);

  /// The directory holding the disk slots (empty when no disk slot is used).
  const std::string& disk_directory() const { return dir_; }
  /// Host/Disk restores that found their state already prefetched.
  std::int64_t prefetch_hits() const { return prefetch_hits_; }

 private:
  struct Block {
    void* ptr = nullptr;
    std::size_t bytes = 0;
    MemorySpace space = MemorySpace::Host;
    bool pinned = false;
    Allocator allocator{};
    std::shared_ptr<CounterBlock> counters;  ///< the context's, for device memory
  };
  void cleanup() noexcept;
  void allocate(Block& b, MemorySpace space, bool counted);
  void free_block(Block& b) noexcept;
  /// Checks `bytes` against available_memory(where), then runs `alloc`, turning a failure
  /// into the InvalidArgument described at the constructor.
  void reserve(const Context& where, std::size_t bytes, const std::string& what,
               const std::string& budget, const std::function<void()>& alloc);
  void check_slot(checkpoint::Level level, std::int32_t slot, const char* what) const;
  std::string disk_path(std::int32_t slot) const;

  // Copies and events on the context's stream (copy_stream = false) or the copy stream.
  void copy_async(void* dst, const void* src, std::size_t bytes, bool copy_stream);
  void pack(const std::vector<StateSegment>& state, void* dst, bool copy_stream);
  void unpack(const void* src, const std::vector<StateSegment>& state, bool copy_stream);
  void record(void* event, bool copy_stream);
  void stream_wait(bool copy_stream, void* event);
  void host_wait(void* event);
  void sync_stream(bool copy_stream);
  void wait_disk();

  Context ctx_;
  SlotNeeds needs_;
  std::size_t state_bytes_;
  bool staging_;
  bool gpu_;
  std::vector<Block> blocks_[checkpoint::kLevelCount];  // Device and Host slots (Disk unused)
  std::vector<char> held_[checkpoint::kLevelCount];
  Block staging_buf_;  // device staging buffer (staging only)
  Block bounce_;       // host buffer of the disk files
  std::string dir_;
  std::future<void> disk_op_;            // the background file operation in flight
  std::int32_t staging_host_slot_ = -1;  // the Host slot the staging buffer holds (prefetched)
  std::int32_t bounce_disk_slot_ = -1;   // the Disk slot the bounce buffer holds (or will)
  bool bounce_prefetched_ = false;       // ... because of a prefetch not yet restored
  std::int64_t prefetch_hits_ = 0;

  // CUDA path only (nullptr otherwise): cudaStream_t / cudaEvent_t.
  void* copy_stream_ = nullptr;
  void* ev_staged_ = nullptr;         // the current state is in the staging buffer
  void* ev_staging_free_ = nullptr;   // the last use of the staging buffer has finished
  void* ev_prefetched_ = nullptr;     // a Host prefetch into the staging buffer has finished
  void* ev_bounce_ready_ = nullptr;   // a store's copy into the bounce buffer has finished
  void* ev_bounce_free_ = nullptr;    // the last copy out of the bounce buffer has finished
  std::vector<void*> ev_host_ready_;  // per Host slot: its store has reached pinned memory
};

}  // namespace dfluid::detail
