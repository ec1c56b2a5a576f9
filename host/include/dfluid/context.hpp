// Where work runs: the CUDA path on a stream, or the CPU path.
//
// A Context is cheap to copy (it shares one state: stream, scratch memory).
// Operators only enqueue work on the context's stream. The host waits only
// where a function documents it ("host wait"): reductions that return a value
// to the host, such as a solver's convergence check.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "dfluid/config.hpp"

namespace dfluid {

/// Requested execution device. Auto picks the GPU when one is present and
/// otherwise the CPU path, printing one notice to stderr.
enum class Device { Auto, Cuda, Cpu };

/// Where a buffer lives. Host memory is what the CPU path computes on.
enum class MemorySpace { Host, Device };

/// Parses "auto", "cuda" or "cpu"; throws InvalidArgument naming the value otherwise.
Device parse_device(const std::string& name);
const char* to_string(Device d);
const char* to_string(MemorySpace s);

/// True when this build has its CUDA path and a CUDA device is visible.
bool cuda_available();

/// CPU path: threads that run the per-cell loops (OpenMP; default: the number of cores
/// or OMP_NUM_THREADS). Results are bitwise the same for every count: the threads run
/// loops whose iterations write their own cells, and the adjoints' scatters in fixed slabs
/// whose additions reach every target in one order (see Accumulation); reductions stay
/// serial. Builds without OpenMP always use 1 thread (set_cpu_threads is then a no-op).
int cpu_threads();
/// Sets the CPU thread count for the whole process; n < 1 throws InvalidArgument.
void set_cpu_threads(int n);

/// How adjoint kernels add up scatter contributions (the transpose of an
/// interpolation: many samples add into the same stencil corner).
///  * Deterministic (the default): bitwise identical gradients run to run, and on the
///    CPU path for any thread count. CPU: fixed slabs of samples on threads, each
///    target receiving its additions in T in one fixed order; GPU: 64-bit fixed-point
///    integer atomics with a scale per target cell, sized on the device (no host wait;
///    a cell with n <= 2^L contributions is exact to n 2^(L-61) of its own largest one,
///    2^-51 for 32). The two paths
///    agree to rounding, not bitwise (see cuda/core/scatter.hpp).
///  * FixedPoint: the GPU's scheme on either path (on the GPU the same as
///    Deterministic; the CPU path runs it on one thread), so that it can be checked
///    without a GPU. Bitwise reproducible; takes the fixed-point workspace
///    (scatter_workspace_bytes in dfluid/advection.hpp) from the context's pool.
///  * Atomic: plain floating-point atomics (GPU atomicAdd; CPU: the loop on
///    OpenMP threads with atomic adds). Usually faster, but the order of the
///    additions, and so the last bits of a gradient, change from run to run.
///    Exists to measure what determinism costs (dfluid-bench); gradients stay
///    exact up to rounding.
enum class Accumulation { Deterministic, Atomic, FixedPoint };
const char* to_string(Accumulation a);

/// What the work on one context costs the GPU, counted as it is issued (Context::counters()).
/// The CPU path counts the events the CUDA path performs for the same call sequence, so
/// tests without a GPU can hold the GPU path to a budget. Counted on the calling host
/// thread (atomically), never inside per-cell loops.
struct ContextCounters {
  /// Kernels the CUDA path launches: one per for_each_cell (fill, axpy, each operator
  /// pass, the one-thread scalar kernels of the Krylov solver, set_scalar), two per
  /// reduction (the per-block kernel and the kernel that sums the 1024 partials), and per
  /// deterministic adjoint scatter: the pass that sizes the fixed point per target cell
  /// (1), the scatter pass (1) and one conversion per target (Accumulation::Atomic: 1 in
  /// all).
  /// Memsets (zero-filled allocations) are not kernels and are not counted.
  std::int64_t launches = 0;
  /// Times the host blocks on the GPU: Context::synchronize, each reduction that returns
  /// its value to the host (sum, dot, max, norms), each read
  /// of the Krylov solver's scalars, and each copy with host memory on one side
  /// (to_vector, assign, copy between a host and a device field: per row when a view is
  /// strided). With DFLUID_SYNC_LAUNCHES=1 (Context::sync_launches) every launch is one more.
  std::int64_t host_waits = 0;
  /// Allocations through the allocator hook made for this context: Buffers and Fields
  /// built on it, and growth of its temporary pool and reduction scratch (on the CPU path
  /// the 8200-byte scratch of the first reduction is counted, as the GPU path allocates
  /// it, without being allocated), a Rollout's device checkpoint slots and staging buffer.
  /// Not counted: the GPU path's pinned host buffers (cudaMallocHost), host memory
  /// allocated without a context (a Rollout's host slots and disk buffer, the HDF5 writer's
  /// staging).
  std::int64_t allocations = 0;
  /// Frees of those allocations (counted here even after the context's last copy died).
  std::int64_t frees = 0;
  /// Bytes copied from host memory to device memory: Field::assign, copy from a host
  /// field to a device field. A field in its context's memory space counts as device
  /// memory (on the CPU path too: that is where the GPU path keeps it).
  std::int64_t bytes_to_device = 0;
  /// Bytes copied from device to host memory: Field::to_vector, copies to a host field,
  /// and the 8-byte result of each reduction returned to the host (n × 8 for a read of
  /// solver scalars).
  std::int64_t bytes_to_host = 0;
  /// Bytes this context holds through the allocator hook now (fields, pool, scratch).
  std::size_t bytes_held = 0;
  /// Most bytes_held since the context was made or reset_counters() was called.
  std::size_t peak_bytes = 0;
};

namespace detail {
struct ContextState;
struct CounterBlock;
}  // namespace detail

class Context {
 public:
  /// Resolves `requested` (Auto: GPU if available, else CPU with one notice).
  /// Device::Cuda without a usable GPU throws CudaError.
  static Context create(Device requested = Device::Auto, int cuda_device = 0);
  /// The CPU path.
  static Context cpu();
  /// The CUDA path on a stream the caller owns (nullptr: the legacy default stream).
  /// dfluid never destroys a caller's stream.
  static Context cuda(void* stream = nullptr, int cuda_device = 0);

  Device device() const;  ///< Resolved device: Cuda or Cpu, never Auto.
  bool on_gpu() const { return device() == Device::Cuda; }
  MemorySpace memory_space() const { return on_gpu() ? MemorySpace::Device : MemorySpace::Host; }
  void* stream() const;  ///< The cudaStream_t as void* (nullptr on the CPU path).
  int cuda_device() const;
  /// Host wait: blocks until all work enqueued on the stream has finished.
  void synchronize() const;
  /// Human-readable device description, e.g. "NVIDIA H100 80GB HBM3 (cuda:0)" or "CPU".
  std::string description() const;
  /// Scatter accumulation of the adjoints (see Accumulation). A setting of the
  /// shared state: every copy of this context sees it.
  Accumulation accumulation() const;
  /// Throws InvalidArgument for a value outside the enum.
  void set_accumulation(Accumulation a);

  /// Launch-checking mode, read from the environment variable DFLUID_SYNC_LAUNCHES when the
  /// context is made (unset or 0: off; 1: on; any other value: InvalidArgument). On, the GPU
  /// path waits for every kernel right after its launch and a failure names the kernel and
  /// the function that launched it (for debugging: every launch becomes a host wait, and is
  /// counted as one on both paths). The CPU path has nothing to wait for; it reports and
  /// counts the mode all the same.
  bool sync_launches() const;

  /// This context's counters (see ContextCounters). Shared by every copy of the context,
  /// like its stream; two contexts made separately count separately.
  ContextCounters counters() const;
  /// Zeroes every count and sets peak_bytes to the bytes held now (bytes_held stays).
  void reset_counters() const;

  detail::ContextState& state() const { return *state_; }
  std::shared_ptr<detail::ContextState> shared_state() const { return state_; }

 private:
  explicit Context(std::shared_ptr<detail::ContextState> s) : state_(std::move(s)) {}
  std::shared_ptr<detail::ContextState> state_;
};

}  // namespace dfluid
