#include "dfluid/memory.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <new>
#include <string>

#include "core/context_state.hpp"
#include "core/cuda_check.hpp"
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
  // Frees run in destructors: a failure is reported, not thrown.
  detail::cuda_warn(cudaFree(p), "cudaFree");
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

Allocator default_allocator() {
  return Allocator{&default_allocate, &default_deallocate, nullptr};
}

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

namespace {

constexpr std::size_t kUnknown = std::numeric_limits<std::size_t>::max();

/// `key` of /proc/meminfo ("MemAvailable:   24124576 kB") in bytes; false when missing.
bool meminfo_bytes(const std::string& key, std::size_t& bytes) {
  std::ifstream in("/proc/meminfo");
  std::string name;
  unsigned long long kib = 0;
  std::string unit;
  while (in >> name >> kib) {
    std::getline(in, unit);  // " kB" (or nothing)
    if (name == key + ":") {
      bytes = static_cast<std::size_t>(kib) * 1024;
      return true;
    }
  }
  return false;
}

/// The number in a one-value file such as a cgroup's memory.max; false when the file is
/// missing or holds something else ("max": no limit).
bool file_number(const char* path, unsigned long long& value) {
  std::ifstream in(path);
  return static_cast<bool>(in >> value);
}

/// The value of `key` in a cgroup memory.stat file ("key value" lines); 0 when missing.
unsigned long long stat_value(const char* path, const std::string& key) {
  std::ifstream in(path);
  std::string name;
  unsigned long long value = 0;
  while (in >> name >> value)
    if (name == key) return value;
  return 0;
}

/// Limit minus usage of the memory cgroup this process sees at /sys/fs/cgroup (a container's
/// own, with cgroup namespaces), counting reclaimable file pages as free; kUnknown when
/// there is no limit.
std::size_t cgroup_available(std::size_t physical) {
  struct Files {
    const char *limit, *usage, *stat, *inactive_key;
  };
  const Files versions[] = {
      {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory.stat",
       "inactive_file"},
      {"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes",
       "/sys/fs/cgroup/memory/memory.stat", "total_inactive_file"}};
  for (const Files& f : versions) {
    unsigned long long limit = 0, usage = 0;
    if (!file_number(f.limit, limit) || !file_number(f.usage, usage)) continue;
    // cgroup v1 writes "no limit" as a huge number (2^63 rounded to pages).
    if (limit >= physical) return kUnknown;
    const unsigned long long inactive = std::min(usage, stat_value(f.stat, f.inactive_key));
    const unsigned long long used = usage - inactive;
    return used >= limit ? 0 : static_cast<std::size_t>(limit - used);
  }
  return kUnknown;
}

std::size_t host_available() {
  std::size_t available = kUnknown, physical = kUnknown;
  if (!meminfo_bytes("MemAvailable", available)) {
    const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) available = std::size_t(pages) * std::size_t(page);
  }
  if (!meminfo_bytes("MemTotal", physical)) {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) physical = std::size_t(pages) * std::size_t(page);
  }
  return std::min(available, cgroup_available(physical));
}

}  // namespace

std::size_t available_memory(const Context& ctx) {
  if (!ctx.on_gpu()) return host_available();
#if DFLUID_WITH_CUDA
  detail::DeviceGuard guard(ctx.cuda_device());
  std::size_t free_bytes = 0, total_bytes = 0;
  const cudaError_t e = cudaMemGetInfo(&free_bytes, &total_bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear the error: the question was only how much is free
    return kUnknown;
  }
  return free_bytes;
#else
  return kUnknown;  // a GPU context cannot exist without the CUDA path
#endif
}

void check_memory_available(const Context& ctx, std::size_t bytes_needed, const std::string& what) {
  const std::size_t available = available_memory(ctx);
  if (bytes_needed <= available) return;
  const std::string where = ctx.on_gpu() ? "on " + ctx.description() : std::string("(host memory)");
  throw InvalidArgument(what + ": " + format_bytes(bytes_needed) + " needed, " +
                        format_bytes(available) + " available " + where);
}

std::string format_bytes(std::size_t bytes) {
  static const char* const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " bytes";
  double v = double(bytes) / 1024;
  int u = 0;
  while (v >= 1024 && u + 1 < int(sizeof units / sizeof units[0])) {
    v /= 1024;
    ++u;
  }
  // Three significant digits; %.Nf may round 9.996 up to 10.00, which is still readable.
  char buf[32];
  std::snprintf(buf, sizeof buf, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

namespace detail {

void CounterBlock::allocated(std::size_t bytes) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  count(held, peak, bytes);
}

void CounterBlock::freed(std::size_t bytes) {
  frees.fetch_add(1, std::memory_order_relaxed);
  held.fetch_sub(bytes);
}

std::shared_ptr<CounterBlock> counters_of(const Context& ctx) {
  return ctx.state().counters;
}

void* allocate_bytes(std::size_t bytes, MemorySpace space, CounterBlock* counters) {
  if (bytes == 0) return nullptr;
  Allocator a = current_allocator();
  void* p = a.allocate(bytes, space, a.user);
  if (!p) throw std::bad_alloc();
  if (space == MemorySpace::Host)
    count(g_host_bytes, g_host_peak, bytes);
  else
    count(g_dev_bytes, g_dev_peak, bytes);
  if (counters) counters->allocated(bytes);
  return p;
}

void deallocate_bytes(void* p, std::size_t bytes, MemorySpace space, const Allocator& a,
                      CounterBlock* counters) {
  if (!p) return;
  a.deallocate(p, bytes, space, a.user);
  (space == MemorySpace::Host ? g_host_bytes : g_dev_bytes).fetch_sub(bytes);
  if (counters) counters->freed(bytes);
}

#if DFLUID_WITH_CUDA
namespace {
/// A CPU context that touches device memory knows no GPU stream to order
/// against (a GPU context's stream does not wait for the legacy stream), so
/// it waits for the whole device before and after.
void device_wait(const Context& ctx) {
  if (ctx.on_gpu()) return;
  cuda_check(cudaDeviceSynchronize(),
             "cudaDeviceSynchronize (device memory used from a CPU context)");
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
  DeviceGuard guard(ctx.on_gpu() ? ctx.cuda_device() : -1);
  device_wait(ctx);
  cudaStream_t st = ctx.on_gpu() ? static_cast<cudaStream_t>(ctx.stream()) : nullptr;
  cuda_check(cudaMemsetAsync(p, 0, bytes, st), "cudaMemsetAsync");
  device_wait(ctx);
#else
  (void)ctx;
  throw CudaError("device memory requested, but this dfluid was built without CUDA");
#endif
}

namespace {

/// Counts a copy on ctx by the roles of its two sides (device: memory where the context's
/// kernels run). Host <-> device: its bytes and one host wait (copy_bytes synchronizes
/// the stream when host memory is on one side).
void count_copy(const Context& ctx, bool dst_device, bool src_device, std::size_t bytes) {
  if (dst_device == src_device) return;
  CounterBlock& c = *ctx.state().counters;
  (dst_device ? c.bytes_to_device : c.bytes_to_host)
      .fetch_add(std::int64_t(bytes), std::memory_order_relaxed);
  c.host_waits.fetch_add(1, std::memory_order_relaxed);
}

bool device_role(const Context& ctx, MemorySpace s) {
  return s == MemorySpace::Device || s == ctx.memory_space();
}

void copy_uncounted(const Context& ctx, void* dst, MemorySpace dst_space, const void* src,
                    MemorySpace src_space, std::size_t bytes);

}  // namespace

void copy_bytes(const Context& ctx, void* dst, MemorySpace dst_space, const void* src,
                MemorySpace src_space, std::size_t bytes) {
  if (bytes == 0 || dst == src) return;
  count_copy(ctx, device_role(ctx, dst_space), device_role(ctx, src_space), bytes);
  copy_uncounted(ctx, dst, dst_space, src, src_space, bytes);
}

void copy_to_host(const Context& ctx, void* dst, const void* src, MemorySpace src_space,
                  std::size_t bytes) {
  if (bytes == 0 || dst == src) return;
  count_copy(ctx, false, device_role(ctx, src_space), bytes);
  copy_uncounted(ctx, dst, MemorySpace::Host, src, src_space, bytes);
}

void copy_from_host(const Context& ctx, void* dst, MemorySpace dst_space, const void* src,
                    std::size_t bytes) {
  if (bytes == 0 || dst == src) return;
  count_copy(ctx, device_role(ctx, dst_space), false, bytes);
  copy_uncounted(ctx, dst, dst_space, src, MemorySpace::Host, bytes);
}

namespace {
void copy_uncounted(const Context& ctx, void* dst, MemorySpace dst_space, const void* src,
                    MemorySpace src_space, std::size_t bytes) {
  if (dst_space == MemorySpace::Host && src_space == MemorySpace::Host) {
    std::memmove(dst, src, bytes);
    return;
  }
#if DFLUID_WITH_CUDA
  DeviceGuard guard(ctx.on_gpu() ? ctx.cuda_device() : -1);
  device_wait(ctx);
  cudaStream_t st = ctx.on_gpu() ? static_cast<cudaStream_t>(ctx.stream()) : nullptr;
  cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, st), "cudaMemcpyAsync");
  device_wait(ctx);
  // Pageable host memory: the copy must have finished before the caller reuses it.
  if (dst_space == MemorySpace::Host || src_space == MemorySpace::Host)
    cuda_check(cudaStreamSynchronize(st), "cudaStreamSynchronize after a copy with host memory");
#else
  (void)ctx;
  throw CudaError("device memory requested, but this dfluid was built without CUDA");
#endif
}
}  // namespace

}  // namespace detail
}  // namespace dfluid
