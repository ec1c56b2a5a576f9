#include "dfluid/context.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "core/context_state.hpp"
#include "core/cuda_check.hpp"
#include "dfluid/error.hpp"
#include "dfluid/memory.hpp"

#if DFLUID_WITH_CUDA
#include <cuda_runtime_api.h>
#endif
#if defined(_OPENMP)
#include <omp.h>
#endif

namespace dfluid {

int cpu_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_cpu_threads(int n) {
  if (n < 1)
    throw InvalidArgument("set_cpu_threads: " + std::to_string(n) + " threads; use 1 or more");
#if defined(_OPENMP)
  omp_set_num_threads(n);
#endif
}

Device parse_device(const std::string& name) {
  if (name == "auto") return Device::Auto;
  if (name == "cuda" || name == "gpu") return Device::Cuda;
  if (name == "cpu") return Device::Cpu;
  throw InvalidArgument("device: unknown value '" + name + "'; use auto, cuda or cpu");
}

const char* to_string(Device d) {
  switch (d) {
    case Device::Auto:
      return "auto";
    case Device::Cuda:
      return "cuda";
    case Device::Cpu:
      return "cpu";
  }
  return "?";
}

const char* to_string(MemorySpace s) {
  return s == MemorySpace::Host ? "host" : "device";
}

bool cuda_available() {
#if DFLUID_WITH_CUDA
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return false;
  }
  return count > 0;
#else
  return false;
#endif
}

namespace {
void cpu_fallback_notice() {
  static std::once_flag once;
  std::call_once(once, [] {
#if DFLUID_WITH_CUDA
    std::fprintf(stderr, "dfluid: no CUDA device found; running on the CPU path\n");
#else
    std::fprintf(stderr, "dfluid: built without CUDA; running on the CPU path\n");
#endif
  });
}
}  // namespace

namespace detail {
bool sync_launches_from_env() {
  const char* v = std::getenv("DFLUID_SYNC_LAUNCHES");
  if (!v || !*v || std::strcmp(v, "0") == 0) return false;
  if (std::strcmp(v, "1") == 0) return true;
  std::string shown(v);
  if (shown.size() > 32) shown = shown.substr(0, 32) + "...";
  throw InvalidArgument("DFLUID_SYNC_LAUNCHES='" + shown +
                        "': use 0 (off) or 1 (wait after every kernel launch), or unset it");
}
}  // namespace detail

Context Context::cpu() {
  auto s = std::make_shared<detail::ContextState>();
  s->device = Device::Cpu;
  s->sync_launches = detail::sync_launches_from_env();
  return Context(std::move(s));
}

Context Context::cuda(void* stream, int cuda_device) {
#if DFLUID_WITH_CUDA
  if (!cuda_available())
    throw CudaError("device cuda: no CUDA device is visible; use --device cpu or auto");
  int count = 0;
  detail::cuda_check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  if (cuda_device < 0 || cuda_device >= count)
    throw CudaError("cuda_device " + std::to_string(cuda_device) + ": only " +
                    std::to_string(count) + " CUDA device(s) visible; use 0 to " +
                    std::to_string(count - 1));
  const bool sync = detail::sync_launches_from_env();
  // The calling thread is left on the context's device, as before: Buffer allocations
  // (dfluid/memory.hpp) do not switch devices yet and rely on it. Everything else this
  // context issues runs under detail::DeviceGuard, so it is right even after the caller
  // switches to another device. cudaFree(nullptr) initializes the device now, so that a
  // broken device fails here and not at the first launch.
  detail::cuda_check(cudaSetDevice(cuda_device),
                     "cudaSetDevice(" + std::to_string(cuda_device) + ")");
  detail::cuda_check(cudaFree(nullptr), "initializing CUDA device " + std::to_string(cuda_device));
  auto s = std::make_shared<detail::ContextState>();
  s->device = Device::Cuda;
  s->cuda_device = cuda_device;
  s->stream = stream;
  s->sync_launches = sync;
  return Context(std::move(s));
#else
  (void)stream;
  (void)cuda_device;
  throw CudaError("device cuda: this dfluid was built without CUDA; use --device cpu or auto");
#endif
}

Context Context::create(Device requested, int cuda_device) {
  switch (requested) {
    case Device::Cpu:
      return cpu();
    case Device::Cuda:
      break;
    case Device::Auto:
      if (!cuda_available()) {
        cpu_fallback_notice();
        return cpu();
      }
      break;
  }
#if DFLUID_WITH_CUDA
  Context c = cuda(nullptr, cuda_device);
  detail::DeviceGuard guard(cuda_device);
  cudaStream_t st = nullptr;
  detail::cuda_check(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "cudaStreamCreate");
  c.state_->stream = st;
  c.state_->owns_stream = true;
  return c;
#else
  return cuda(nullptr, cuda_device);  // throws: built without CUDA
#endif
}

Device Context::device() const {
  return state_->device;
}
void* Context::stream() const {
  return state_->stream;
}
int Context::cuda_device() const {
  return state_->cuda_device;
}

void Context::synchronize() const {
  state_->counters->host_waits.fetch_add(1, std::memory_order_relaxed);
#if DFLUID_WITH_CUDA
  if (on_gpu()) {
    detail::DeviceGuard guard(state_->cuda_device);
    detail::cuda_check(cudaStreamSynchronize(static_cast<cudaStream_t>(state_->stream)),
                       "Context::synchronize");
  }
#endif
}

std::string Context::description() const {
#if DFLUID_WITH_CUDA
  if (on_gpu()) {
    cudaDeviceProp p{};
    detail::cuda_check(cudaGetDeviceProperties(&p, state_->cuda_device), "cudaGetDeviceProperties");
    return std::string(p.name) + " (cuda:" + std::to_string(state_->cuda_device) + ")";
  }
#endif
  return "CPU";
}

bool Context::sync_launches() const {
  return state_->sync_launches;
}

ContextCounters Context::counters() const {
  const detail::CounterBlock& b = *state_->counters;
  ContextCounters c;
  c.launches = b.launches.load();
  c.host_waits = b.host_waits.load();
  c.allocations = b.allocations.load();
  c.frees = b.frees.load();
  c.bytes_to_device = b.bytes_to_device.load();
  c.bytes_to_host = b.bytes_to_host.load();
  c.bytes_held = b.held.load();
  c.peak_bytes = b.peak.load();
  return c;
}

void Context::reset_counters() const {
  detail::CounterBlock& b = *state_->counters;
  b.launches.store(0);
  b.host_waits.store(0);
  b.allocations.store(0);
  b.frees.store(0);
  b.bytes_to_device.store(0);
  b.bytes_to_host.store(0);
  b.peak.store(b.held.load());
}

const char* to_string(Accumulation a) {
  switch (a) {
    case Accumulation::Atomic:
      return "atomic";
    case Accumulation::FixedPoint:
      return "fixed-point";
    case Accumulation::Deterministic:
      break;
  }
  return "deterministic";
}

Accumulation Context::accumulation() const {
  return state_->accumulation;
}

void Context::set_accumulation(Accumulation a) {
  if (a != Accumulation::Deterministic && a != Accumulation::Atomic &&
      a != Accumulation::FixedPoint)
    throw InvalidArgument("set_accumulation: unknown value " + std::to_string(int(a)) +
                          "; use Accumulation::Deterministic, Atomic or FixedPoint");
  state_->accumulation = a;
}

namespace detail {

void count_events(ContextState* s, std::int64_t launches, std::int64_t host_waits,
                  std::int64_t bytes_to_host) {
  if (!s) return;
  CounterBlock& c = *s->counters;
  if (launches) c.launches.fetch_add(launches, std::memory_order_relaxed);
  if (host_waits) c.host_waits.fetch_add(host_waits, std::memory_order_relaxed);
  if (bytes_to_host) c.bytes_to_host.fetch_add(bytes_to_host, std::memory_order_relaxed);
}

void count_reduction_scratch(ContextState* s, std::size_t bytes) {
  if (!s || s->device == Device::Cuda) return;
  std::lock_guard<std::mutex> lock(s->scratch_mutex);
  if (bytes <= s->counted_scratch_bytes) return;
  if (s->counted_scratch_bytes) s->counters->freed(s->counted_scratch_bytes);
  s->counters->allocated(bytes);
  s->counted_scratch_bytes = bytes;
}

void* ContextState::scratch(std::size_t bytes) {
  if (bytes > device_scratch_bytes) {
    MemorySpace sp = device == Device::Cuda ? MemorySpace::Device : MemorySpace::Host;
#if DFLUID_WITH_CUDA
    DeviceGuard guard(device == Device::Cuda ? cuda_device : -1);
#endif
    if (device_scratch)
      deallocate_bytes(device_scratch, device_scratch_bytes, sp, scratch_allocator, counters.get());
    scratch_allocator = current_allocator();
    device_scratch = allocate_bytes(bytes, sp, counters.get());
    device_scratch_bytes = bytes;
  }
  return device_scratch;
}

void* ContextState::pinned(std::size_t bytes) {
  if (bytes > pinned_scratch_bytes) {
#if DFLUID_WITH_CUDA
    DeviceGuard guard(cuda_device);
    if (pinned_scratch) cuda_check(cudaFreeHost(pinned_scratch), "cudaFreeHost");
    pinned_scratch = nullptr;
    pinned_scratch_bytes = 0;
    cuda_check(cudaMallocHost(&pinned_scratch, bytes),
               "cudaMallocHost of " + std::to_string(bytes) + " bytes");
#else
    throw CudaError("pinned memory requires the CUDA path");
#endif
    pinned_scratch_bytes = bytes;
  }
  return pinned_scratch;
}

unsigned char* ContextState::flag_bytes() {
  if (flags) return flags_device;
#if DFLUID_WITH_CUDA
  if (device == Device::Cuda) {
    DeviceGuard guard(cuda_device);
    void* h = nullptr;
    void* d = nullptr;
    // Mapped: kernels store into host memory, so reading a flag never needs a copy.
    cuda_check(cudaHostAlloc(&h, kFlagSites, cudaHostAllocMapped),
               "cudaHostAlloc (mapped) of the finiteness flags");
    const cudaError_t e = cudaHostGetDevicePointer(&d, h, 0);
    if (e != cudaSuccess) {
      cuda_warn(cudaFreeHost(h), "cudaFreeHost of the finiteness flags");
      cuda_check(e, "cudaHostGetDevicePointer of the finiteness flags");
    }
    flags = static_cast<unsigned char*>(h);
    flags_device = static_cast<unsigned char*>(d);
    std::memset(flags, 0, kFlagSites);
    return flags_device;
  }
#endif
  flags = new unsigned char[kFlagSites]();
  flags_device = flags;
  return flags_device;
}

ContextState::TempBlock ContextState::take_temp(std::size_t bytes) {
  std::lock_guard<std::mutex> lock(scratch_mutex);
  std::size_t best = temp_free.size();
  for (std::size_t i = 0; i < temp_free.size(); ++i)
    if (temp_free[i].bytes >= bytes &&
        (best == temp_free.size() || temp_free[i].bytes < temp_free[best].bytes))
      best = i;
  if (best < temp_free.size()) {
    TempBlock b = temp_free[best];
    temp_free.erase(temp_free.begin() + std::ptrdiff_t(best));
    return b;
  }
  MemorySpace sp = device == Device::Cuda ? MemorySpace::Device : MemorySpace::Host;
#if DFLUID_WITH_CUDA
  DeviceGuard guard(device == Device::Cuda ? cuda_device : -1);
#endif
  TempBlock b{allocate_bytes(bytes, sp, counters.get()), bytes, current_allocator()};
  temp_blocks.push_back(b);
  return b;
}

void ContextState::give_temp(void* ptr) {
  std::lock_guard<std::mutex> lock(scratch_mutex);
  for (const TempBlock& b : temp_blocks)
    if (b.ptr == ptr) {
      temp_free.push_back(b);
      return;
    }
}

std::size_t temp_pool_bytes(const Context& ctx) {
  ContextState& s = ctx.state();
  std::lock_guard<std::mutex> lock(s.scratch_mutex);
  std::size_t total = 0;
  for (const ContextState::TempBlock& b : s.temp_blocks)
    total += b.bytes;
  return total;
}

std::size_t trim_temp_pool(const Context& ctx) {
  ContextState& s = ctx.state();
  std::lock_guard<std::mutex> lock(s.scratch_mutex);
  const MemorySpace sp = s.device == Device::Cuda ? MemorySpace::Device : MemorySpace::Host;
  std::size_t freed = 0;
#if DFLUID_WITH_CUDA
  // A free block may still be read or written by work enqueued before it was handed back;
  // cudaFree waits for the device anyway, but the stream is the one that orders that work.
  if (s.device == Device::Cuda && !s.temp_free.empty() && s.stream)
    cudaStreamSynchronize(static_cast<cudaStream_t>(s.stream));
#endif
  for (const ContextState::TempBlock& f : s.temp_free) {
    for (std::size_t i = 0; i < s.temp_blocks.size(); ++i)
      if (s.temp_blocks[i].ptr == f.ptr) {
        s.temp_blocks.erase(s.temp_blocks.begin() + std::ptrdiff_t(i));
        break;
      }
    deallocate_bytes(f.ptr, f.bytes, sp, f.allocator, s.counters.get());
    freed += f.bytes;
  }
  s.temp_free.clear();
  return freed;
}

TempBuffer::TempBuffer(const Context& ctx, std::size_t bytes) {
  if (bytes == 0) return;
  state_ = ctx.shared_state();
  ContextState::TempBlock b = state_->take_temp(bytes);
  data_ = b.ptr;
  bytes_ = bytes;
}

void TempBuffer::release() {
  if (state_ && data_) state_->give_temp(data_);
  state_.reset();
  data_ = nullptr;
  bytes_ = 0;
}

ContextState::~ContextState() {
  MemorySpace sp = device == Device::Cuda ? MemorySpace::Device : MemorySpace::Host;
#if DFLUID_WITH_CUDA
  // A destructor must not throw: failures are reported on stderr (cuda_warn). A CUDA context
  // never reaches here without a visible device, so the guard's own checks do not fail.
  std::unique_ptr<DeviceGuard> guard;
  if (device == Device::Cuda) {
    try {
      guard = std::make_unique<DeviceGuard>(cuda_device);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "dfluid: releasing a context: %s\n", e.what());
    }
  }
  if (device == Device::Cuda && stream)
    cuda_warn(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)),
              "releasing a context: cudaStreamSynchronize");
  if (pinned_scratch) cuda_warn(cudaFreeHost(pinned_scratch), "releasing a context: cudaFreeHost");
  if (flags && device == Device::Cuda) {
    cuda_warn(cudaFreeHost(flags), "releasing a context: cudaFreeHost (finiteness flags)");
    flags = nullptr;
  }
  if (flag_event)
    cuda_warn(cudaEventDestroy(static_cast<cudaEvent_t>(flag_event)),
              "releasing a context: cudaEventDestroy");
  if (owns_stream && stream)
    cuda_warn(cudaStreamDestroy(static_cast<cudaStream_t>(stream)),
              "releasing a context: cudaStreamDestroy");
#endif
  delete[] flags;  // CPU path (the GPU path's mapped bytes were freed above)
  if (counted_scratch_bytes) counters->freed(counted_scratch_bytes);
  if (device_scratch)
    deallocate_bytes(device_scratch, device_scratch_bytes, sp, scratch_allocator, counters.get());
  for (const TempBlock& b : temp_blocks)
    deallocate_bytes(b.ptr, b.bytes, sp, b.allocator, counters.get());
}

}  // namespace detail
}  // namespace dfluid
