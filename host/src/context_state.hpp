// Private shared state behind a Context: its stream and scratch memory for
// reductions (so a reduction allocates nothing once warmed up).
#pragma once

#include <cstddef>
#include <mutex>
#include <vector>

#include "dfluid/context.hpp"
#include "dfluid/memory.hpp"

namespace dfluid::detail {

struct ContextState {
  Device device = Device::Cpu;
  int cuda_device = 0;
  void* stream = nullptr;
  bool owns_stream = false;
  Accumulation accumulation = Accumulation::Deterministic;

  std::mutex scratch_mutex;
  void* device_scratch = nullptr;  // grows on demand, through the allocator hook
  std::size_t device_scratch_bytes = 0;
  Allocator scratch_allocator{};   // the hook that made device_scratch
  void* pinned_scratch = nullptr;  // small pinned host buffer for reduction results
  std::size_t pinned_scratch_bytes = 0;

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
