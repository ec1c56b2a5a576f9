// Memory: one allocator hook for everything dfluid allocates, and Buffer, an
// owning or non-owning typed array in host or device memory.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "dfluid/config.hpp"
#include "dfluid/context.hpp"

namespace dfluid {

/// The allocator hook. Every allocation dfluid makes (fields, solver levels,
/// scratch) goes through it. Replace it before creating fields (e.g. to route
/// device memory through a caching pool); buffers remember the hook that made them.
struct Allocator {
  void* (*allocate)(std::size_t bytes, MemorySpace space, void* user) = nullptr;
  void (*deallocate)(void* ptr, std::size_t bytes, MemorySpace space, void* user) = nullptr;
  void* user = nullptr;
};

/// The built-in allocator: aligned host memory, cudaMalloc for device memory.
Allocator default_allocator();
/// Installs `a` as the hook; both function pointers must be set.
void set_allocator(const Allocator& a);
Allocator current_allocator();

/// Bytes currently held and the high-water mark, per memory space, counted over
/// every allocation made through the hook.
struct MemoryStats {
  std::size_t host_bytes = 0, host_peak = 0;
  std::size_t device_bytes = 0, device_peak = 0;
};
MemoryStats memory_stats();
void reset_memory_peaks();

// ---- how much memory there is, before allocating ----
// Allocating more than exists ends in std::bad_alloc or the OOM killer (CPU) or a failed
// cudaMalloc (GPU), often after minutes of setup. Estimate first (e.g.
// Simulation<T>::estimate_memory() in dfluid/simulation.hpp), then:
//   check_memory_available(ctx, estimate.forward(), "a 3D float simulation of 512^3 cells");

/// The bytes `ctx` can still allocate in its memory space, as the system reports them now.
///  * CPU context: MemAvailable of /proc/meminfo (memory available without swapping, page
///    cache included), or sysconf(_SC_AVPHYS_PAGES) × page size where that file is missing;
///    where a cgroup (a container) limits memory, at most its limit minus its usage (v2
///    memory.max − memory.current, v1 memory.limit_in_bytes − memory.usage_in_bytes, with
///    reclaimable file pages not counted as used).
///  * GPU context: the free bytes cudaMemGetInfo reports for the context's device (builds
///    with the CUDA path only).
/// std::numeric_limits<std::size_t>::max() when nothing can be found out (no check then).
std::size_t available_memory(const Context& ctx);

/// Throws InvalidArgument when `bytes_needed` exceeds available_memory(ctx), with one line
///   "<what>: 12.0 GiB needed, 7.80 GiB available (host memory)"
/// (on a GPU context "... available on <ctx.description()>"). `what` names what needs the
/// memory, e.g. "--size 2048: a 3D float simulation of 2048^3 cells". Nothing is reserved:
/// other allocations may still take the memory between this check and yours.
void check_memory_available(const Context& ctx, std::size_t bytes_needed, const std::string& what);

/// A byte count for messages, in binary units with 3 significant digits: "512 bytes",
/// "1.50 KiB", "12.0 GiB", "860 GiB".
std::string format_bytes(std::size_t bytes);

namespace detail {
/// The counters of `ctx` (Context::counters()), for allocations that may outlive it.
std::shared_ptr<CounterBlock> counters_of(const Context& ctx);
/// Allocates through the hook. `counters`: the context the memory is for (its
/// allocations, bytes held and peak count it); nullptr: no context (only the process-wide
/// memory_stats() count it).
void* allocate_bytes(std::size_t bytes, MemorySpace space, CounterBlock* counters = nullptr);
/// Frees through `a`; `counters` as given to allocate_bytes.
void deallocate_bytes(void* p, std::size_t bytes, MemorySpace space, const Allocator& a,
                      CounterBlock* counters = nullptr);
/// Zero `bytes` at `p` (cudaMemsetAsync on the context stream for device memory).
void zero_bytes(const Context& ctx, void* p, std::size_t bytes, MemorySpace space);
/// Copies between any two spaces; enqueued on the context stream when a device is involved.
/// Counted on ctx (ContextCounters) by the spaces as declared, a buffer in the context's
/// memory space counting as device memory: host <-> device is a host wait and its bytes.
void copy_bytes(const Context& ctx, void* dst, MemorySpace dst_space, const void* src,
                MemorySpace src_space, std::size_t bytes);
/// copy_bytes from `src` (in src_space) into caller host memory (a std::vector): counted as
/// device-to-host whenever src is in ctx's memory space or on the device.
void copy_to_host(const Context& ctx, void* dst, const void* src, MemorySpace src_space,
                  std::size_t bytes);
/// copy_bytes from caller host memory into `dst` (in dst_space); counted as
/// host-to-device whenever dst is in ctx's memory space or on the device.
void copy_from_host(const Context& ctx, void* dst, MemorySpace dst_space, const void* src,
                    std::size_t bytes);
/// Bytes the context's pool of temporaries (TempBuffer) holds: blocks in use and free ones.
std::size_t temp_pool_bytes(const Context& ctx);
/// Frees the pool's free blocks through the hook (blocks in use stay); returns the bytes
/// freed. The pool otherwise keeps every block it ever made: Simulation::reserve_adjoint()
/// trims it so that it holds no more than the simulation's memory estimate counts.
std::size_t trim_temp_pool(const Context& ctx);
/// Temporary memory of an operator, owned by the Context: taken from the
/// context's free list (allocated through the hook only when no free block is
/// large enough) and handed back, not freed, when the handle dies. Work on one
/// context is ordered on its stream, so a block handed back after its last
/// launch was enqueued is safe for the next launch to reuse; no operator
/// allocates (or, on the GPU, synchronizes through cudaFree) once warmed up.
/// Not zero-filled. Blocks are freed with the context.
class TempBuffer {
 public:
  TempBuffer() = default;
  TempBuffer(const Context& ctx, std::size_t bytes);
  ~TempBuffer() { release(); }
  TempBuffer(TempBuffer&& o) noexcept
      : state_(std::move(o.state_)), data_(o.data_), bytes_(o.bytes_) {
    o.data_ = nullptr;
    o.bytes_ = 0;
  }
  TempBuffer& operator=(TempBuffer&& o) noexcept {
    if (this != &o) {
      release();
      state_ = std::move(o.state_);
      data_ = o.data_;
      bytes_ = o.bytes_;
      o.data_ = nullptr;
      o.bytes_ = 0;
    }
    return *this;
  }
  TempBuffer(const TempBuffer&) = delete;
  TempBuffer& operator=(const TempBuffer&) = delete;

  void* data() const { return data_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  std::size_t bytes() const { return bytes_; }

 private:
  void release();
  std::shared_ptr<ContextState> state_;
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace detail

/// A typed array in one memory space: owning (allocated through the hook) or a
/// non-owning wrapper of memory the caller owns. Move-only.
template <class T>
class Buffer {
 public:
  Buffer() = default;
  /// Allocates `n` elements, zero-filled (the fill is enqueued on ctx's stream).
  Buffer(const Context& ctx, Index n, MemorySpace space)
      : size_(n), space_(space), owning_(true), allocator_(current_allocator()) {
    if (n > 0) {
      counters_ = detail::counters_of(ctx);
      data_ = static_cast<T*>(detail::allocate_bytes(bytes(), space, counters_.get()));
      detail::zero_bytes(ctx, data_, bytes(), space);
    }
  }
  /// Wraps caller-owned memory; dfluid never frees it.
  static Buffer wrap(T* data, Index n, MemorySpace space) {
    Buffer b;
    b.data_ = data;
    b.size_ = n;
    b.space_ = space;
    b.owning_ = false;
    return b;
  }
  Buffer(Buffer&& o) noexcept { swap(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    Buffer tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (owning_ && data_)
      detail::deallocate_bytes(data_, bytes(), space_, allocator_, counters_.get());
  }

  T* data() const { return data_; }
  Index size() const { return size_; }
  std::size_t bytes() const { return static_cast<std::size_t>(size_) * sizeof(T); }
  MemorySpace space() const { return space_; }
  bool owning() const { return owning_; }

 private:
  void swap(Buffer& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(space_, o.space_);
    std::swap(owning_, o.owning_);
    std::swap(allocator_, o.allocator_);
    std::swap(counters_, o.counters_);
  }
  T* data_ = nullptr;
  Index size_ = 0;
  MemorySpace space_ = MemorySpace::Host;
  bool owning_ = false;
  Allocator allocator_{};
  std::shared_ptr<detail::CounterBlock> counters_;  ///< the context it was allocated for
};

}  // namespace dfluid
