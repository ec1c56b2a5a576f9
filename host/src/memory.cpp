#include "dfluid/memory.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

#include "context_state.hpp"
#include "dfluid/error.hpp"

#if DFLUID_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace dfluid {
namespace {

constexpr std::size_t kHostAlignment = 64;  // one cache line; also fine for AVX-512 loads

void* default_allocate(std::size_t bytes, MemorySpace space, void*) {
  if (space == MemorySpace::Host) {
    std::size_t rounded = (bytes + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
    void* p = std::aligned_alloc(kHostAlignment, rounded);
    if (!p) throw std::bad_alloc();
    return p;
  }
#if DFLUID_WITH_CUDA
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw CudaError("cudaMalloc of " + std::to_string(bytes) + " bytes failed: " +
                    cudaGetErrorString(e) + "; reduce the grid size or the memory budget");
  }
  return p;
#else
  throw CudaError("device memory requested, but this dfluid was built without CUDA");
#endif
}

void default_deallocate(void* p, std::size_t, MemorySpace space, void*) {
  if (space == MemorySpace::Host) {
    std::free(p);
    return;
  }
#if DFLUID_WITH_CUDA
  cudaFree(p);
#endif
}

std::mutex g_alloc_mutex;
Allocator g_allocator{&default_allocate, &default_deallocate, nullptr};

std::atomic<std::size_t> g_host_bytes{0}, g_host_peak{0}, g_dev_bytes{0}, g_dev_peak{0};

void count(std::atomic<std::size_t>& cur, std::atomic<std::size_t>& peak, std::size_t add) {
  std::size_t now = cur.fetch_add(add) + add;
  std::size_t p = peak.load();
  while (now > p && !peak.compare_exchange_weak(p, now)) {
  }
}

}  // namespace

Allocator default_allocator() { return Allocator{&default_allocate, &default_deallocate, nullptr}; }

void set_allocator(const Allocator& a) {
  if (!a.allocate || !a.deallocate)
    throw InvalidArgument("set_allocator: both allocate and deallocate must be set");
  std::lock_guard<std::mutex> lock(g_alloc_mutex);
  g_allocator = a;
}

Allocator current_allocator() {
  std::lock_guard<std::mutex> lock(g_alloc_mutex);
  return g_allocator;
}

MemoryStats memory_stats() {
  MemoryStats s;
  s.host_bytes = g_host_bytes.load();
  s.host_peak = g_host_peak.load();
  s.device_bytes = g_dev_bytes.load();
  s.device_peak = g_dev_peak.load();
  return s;
}

void reset_memory_peaks() {
  g_host_peak.store(g_host_bytes.load());
  g_dev_peak.store(g_dev_bytes.load());
}

namespace detail {

void* allocate_bytes(std::size_t bytes, MemorySpace space) {
  if (bytes == 0) return nullptr;
  Allocator a = current_allocator();
  void* p = a.allocate(bytes, space, a.user);
  if (!p) throw std::bad_alloc();
  if (space == MemorySpace::Host)
    count(g_host_bytes, g_host_peak, bytes);
  else
    count(g_dev_bytes, g_dev_peak, bytes);
  return p;
}

void deallocate_bytes(void* p, std::size_t bytes, MemorySpace space, const Allocator& a) {
  if (!p) return;
  a.deallocate(p, bytes, space, a.user);
  (space == MemorySpace::Host ? g_host_bytes : g_dev_bytes).fetch_sub(bytes);
}

#if DFLUID_WITH_CUDA
namespace {
/// A CPU context that touches device memory knows no GPU stream to order
/// against (a GPU context's stream does not wait for the legacy stream), so
/// it waits for the whole device before and after.
void device_wait(const Context& ctx) {
  if (ctx.on_gpu()) return;
  cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess) throw CudaError(std::string("CUDA error: ") + cudaGetErrorString(e));
}
}  // namespace
#endif

void zero_bytes(const Context& ctx, void* p, std::size_t bytes, MemorySpace space) {
  if (!p || bytes == 0) return;
  if (space == MemorySpace::Host) {
    std::memset(p, 0, bytes);
    return;
  }
#if DFLUID_WITH_CUDA
  device_wait(ctx);
  cudaStream_t st = ctx.on_gpu() ? static_cast<cudaStream_t>(ctx.stream()) : nullptr;
  cudaError_t e = cudaMemsetAsync(p, 0, bytes, st);
  if (e != cudaSuccess) throw CudaError(std::string("cudaMemsetAsync: ") + cudaGetErrorString(e));
  device_wait(ctx);
#else
  (void)ctx;
  throw CudaError("device memory requested, but this dfluid was built without CUDA");
#endif
}

void copy_bytes(const Context& ctx, void* dst, MemorySpace dst_space, const void* src,
                MemorySpace src_space, std::size_t bytes) {
  if (bytes == 0 || dst == src) return;
  if (dst_space == MemorySpace::Host && src_space == MemorySpace::Host) {
    std::memmove(dst, src, bytes);
    return;
  }
#if DFLUID_WITH_CUDA
  device_wait(ctx);
  cudaStream_t st = ctx.on_gpu() ? static_cast<cudaStream_t>(ctx.stream()) : nullptr;
  cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, st);
  if (e != cudaSuccess) throw CudaError(std::string("cudaMemcpyAsync: ") + cudaGetErrorString(e));
  device_wait(ctx);
  // Pageable host memory: the copy must have finished before the caller reuses it.
  if (dst_space == MemorySpace::Host || src_space == MemorySpace::Host) {
    e = cudaStreamSynchronize(st);
    if (e != cudaSuccess) throw CudaError(std::string("CUDA error: ") + cudaGetErrorString(e));
  }
#else
  (void)ctx;
  throw CudaError("device memory requested, but this dfluid was built without CUDA");
#endif
}

}  // namespace detail
}  // namespace dfluid
