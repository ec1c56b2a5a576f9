// Execution layer: runs a per-cell function on the GPU (a kernel launch on the
// context's stream) or on the CPU (a host loop), from one call site.
//
// Include this header only from cuda/*.cpp. Those files are compiled by nvcc
// when the CUDA path is built and by the C++ compiler otherwise, so the same
// operator source produces both paths. (host/src is always plain C++ and must
// not instantiate these templates: that would give two different definitions.)
//
// Per-cell lambdas are written as DFLUID_LAMBDA(captures...)(int i, int j, int k) { ... }
// and must capture views and scalars by value.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "dfluid/config.hpp"
#include "dfluid/context.hpp"
#include "dfluid/error.hpp"
#include "dfluid/view.hpp"

#if defined(__CUDACC__)
#include <cub/block/block_reduce.cuh>
#include <cuda_runtime.h>

#include "core/cuda_check.hpp"
#define DFLUID_LAMBDA [=] __host__ __device__
#else
#define DFLUID_LAMBDA [=]
#endif

namespace dfluid::detail {

/// What a launch needs from a Context.
struct Exec {
  bool gpu = false;
  void* stream = nullptr;
  ContextState* state = nullptr;
  int device = 0;     ///< the context's CUDA device (launches switch to it when it is not current)
  bool sync = false;  ///< DFLUID_SYNC_LAUNCHES=1: wait after every launch (Context::sync_launches)
};
Exec exec_of(const Context& ctx);

/// Adds to the context's ContextCounters (defined in host/src/core/context.cpp).
void count_events(ContextState* s, std::int64_t launches, std::int64_t host_waits,
                  std::int64_t bytes_to_host);
/// Counts what the CUDA path issues for one call, on both paths (the CPU path counts the
/// events the GPU would perform): kernel launches, host waits, bytes copied to the host.
/// With DFLUID_SYNC_LAUNCHES=1 each launch is also a host wait (the GPU path synchronizes
/// after it, see after_launch), so both paths count one more wait per launch.
inline void count_gpu_work(const Exec& ex, std::int64_t launches, std::int64_t host_waits = 0,
                           std::int64_t bytes_to_host = 0) {
  count_events(ex.state, launches, host_waits + (ex.sync ? launches : 0), bytes_to_host);
}

void count_reduction_scratch(ContextState* s, std::size_t bytes);

/// Throws CudaError (with `what`) if the last launch failed. Does not synchronize.
void check_launch(const char* what);
/// After a launch of `kernel` issued from `site` (the calling function): check_launch, and
/// with DFLUID_SYNC_LAUNCHES=1 (ex.sync) also a wait on the stream, so that a kernel that
/// faults is named by the error instead of a later, unrelated call.
void after_launch(const Exec& ex, const char* kernel, const char* site);

// The function that called a launch helper, for after_launch's error message (GCC and Clang
// built-in; nvcc passes it to its host compiler).
#if defined(__GNUC__)
#define DFLUID_CALLER() __builtin_FUNCTION()
#else
#define DFLUID_CALLER() "?"
#endif

constexpr int kBlock = 256;
/// CPU path: grids with at least this many cells run for_each_cell on OpenMP threads.
constexpr Index kParallelCells = 8192;

#if defined(__CUDACC__)
/// Flat thread index t -> (i, j, k), x fastest. `small` (total < 2^32, the same for every
/// thread) selects 32-bit unsigned division: a 64-bit division is a long software sequence
/// on a GPU and this runs once per cell. A branch rather than a second kernel instantiation,
/// so that each per-cell function is compiled once.
__device__ __forceinline__ void decode_cell(Index t, int nx, int ny, bool small, int& i, int& j,
                                            int& k) {
  if (small) {
    const unsigned u = unsigned(t), r = u / unsigned(nx), kk = r / unsigned(ny);
    i = int(u - r * unsigned(nx));
    j = int(r - kk * unsigned(ny));
    k = int(kk);
    return;
  }
  const Index r = t / nx, kk = r / ny;
  i = int(t - r * nx);
  j = int(r - kk * ny);
  k = int(kk);
}

/// True when the flat indices of a box of `total` cells fit in 32 bits.
inline bool fits_32bit(Index total) {
  return total <= (Index(1) << 32);
}

template <class F>
__global__ void for_each_cell_kernel(int nx, int ny, Index total, bool small, F f) {
  for (Index t = Index(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += Index(blockDim.x) * gridDim.x) {
    int i, j, k;
    decode_cell(t, nx, ny, small, i, j, k);
    f(i, j, k);
  }
}

inline unsigned grid_blocks(Index total) {
  Index b = (total + kBlock - 1) / kBlock;
  return unsigned(b < 65535 * 16 ? (b > 0 ? b : 1) : 65535 * 16);
}

#endif

/// Calls f(i, j, k) for every 0 <= i < nx, 0 <= j < ny, 0 <= k < nz.
/// f must write only to its own (i, j, k) outputs (a gather), so order never matters.
/// `site` names the caller in the errors of DFLUID_SYNC_LAUNCHES=1 (leave it defaulted).
template <class F>
void for_each_cell(const Exec& ex, int nx, int ny, int nz, F f,
                   const char* site = DFLUID_CALLER()) {
  const Index total = Index(nx) * ny * nz;
  if (total == 0) return;
  count_gpu_work(ex, 1);  // one kernel
  if (ex.gpu) {
#if defined(__CUDACC__)
    DeviceGuard guard(ex.device);
    for_each_cell_kernel<<<grid_blocks(total), kBlock, 0, static_cast<cudaStream_t>(ex.stream)>>>(
        nx, ny, total, fits_32bit(total), f);
    after_launch(ex, "for_each_cell", site);
    return;
#else
    throw CudaError("internal: GPU launch from a translation unit not compiled by nvcc");
#endif
  }
  (void)site;  // the CPU path has no launch to fail
#if defined(_OPENMP)
  // CPU threads over rows. f writes only its own cell (a gather), so the result does not
  // depend on the number of threads or their order: bitwise the same as the serial loop.
  // Small grids stay serial: forking threads costs more than they would save.
  if (total >= kParallelCells && Index(ny) * nz > 1) {
#pragma omp parallel
    {
      // Each thread calls its own copy of f. Called through the shared f, every captured
      // view (pointer, strides) is a load through the pointer OpenMP passes to the thread
      // function, reloaded for every cell (measured: a red-black sweep at 64^3 took 1.4x
      // the time of the same loop on a local copy, which the compiler keeps in registers).
      const F fl = f;
#pragma omp for collapse(2) schedule(static)
      for (int k = 0; k < nz; ++k)
        for (int j = 0; j < ny; ++j)
          for (int i = 0; i < nx; ++i)
            fl(i, j, k);
    }
    return;
  }
#endif
  for (int k = 0; k < nz; ++k)
    for (int j = 0; j < ny; ++j)
      for (int i = 0; i < nx; ++i)
        f(i, j, k);
}

/// CPU path only: calls f(i, j, k) in the fixed k, j, i order on the calling thread. For
/// loops whose iterations write shared locations (the CPU scatter adds into stencil
/// corners), where threads would race.
template <class F>
void for_each_cell_serial(int nx, int ny, int nz, F f) {
  for (int k = 0; k < nz; ++k)
    for (int j = 0; j < ny; ++j)
      for (int i = 0; i < nx; ++i)
        f(i, j, k);
}

template <class F>
void for_each_cell(const Exec& ex, const std::array<int, 3>& n, F f,
                   const char* site = DFLUID_CALLER()) {
  for_each_cell(ex, n[0], n[1], n[2], f, site);
}

/// Calls f(std::integral_constant<int, D>{}) with D = dim (1, 2 or 3): turns a
/// grid's run-time dimension into the template argument of the per-cell math.
template <class F>
void with_dim(int dim, F f) {
  switch (dim) {
    case 1:
      f(std::integral_constant<int, 1>{});
      break;
    case 2:
      f(std::integral_constant<int, 2>{});
      break;
    default:
      f(std::integral_constant<int, 3>{});
      break;
  }
}

// ---------------------------------------------------------------------------
// Deterministic reductions. Values are accumulated in double in a fixed order
// that depends only on the problem size, never on thread scheduling, so the
// same inputs give bitwise the same result run after run.
// On the GPU this is a host wait: the result is copied back and the stream is
// synchronized.

enum class ReduceOp { Sum, Max };

DFLUID_HD inline double reduce_combine(ReduceOp op, double a, double b) {
  return op == ReduceOp::Sum ? a + b : (a > b ? a : b);
}
DFLUID_HD inline double reduce_identity(ReduceOp op) {
  return op == ReduceOp::Sum ? 0.0 : -std::numeric_limits<double>::infinity();
}

constexpr int kReduceBlocks = 1024;  // fixed: the partial layout depends only on the size

#if defined(__CUDACC__)
struct MaxOp {
  __device__ double operator()(double a, double b) const { return a > b ? a : b; }
};

template <class F>
__global__ void reduce_cells_kernel(int nx, int ny, Index total, bool small, ReduceOp op, F f,
                                    double* partial) {
  using BlockReduce = cub::BlockReduce<double, kBlock>;
  __shared__ typename BlockReduce::TempStorage tmp;
  double acc = reduce_identity(op);
  for (Index t = Index(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += Index(blockDim.x) * gridDim.x) {
    int i, j, k;
    decode_cell(t, nx, ny, small, i, j, k);
    acc = reduce_combine(op, acc, f(i, j, k));
  }
  double block =
      op == ReduceOp::Sum ? BlockReduce(tmp).Sum(acc) : BlockReduce(tmp).Reduce(acc, MaxOp{});
  if (threadIdx.x == 0) partial[blockIdx.x] = block;
}

__global__ void reduce_partials_kernel(int n, ReduceOp op, const double* partial, double* out);

/// Launches reduce_cells_kernel over the box into `partial` (kReduceBlocks partials).
template <class F>
void launch_reduce_cells(const Exec& ex, int nx, int ny, int nz, ReduceOp op, F f, double* partial,
                         const char* site) {
  const Index total = Index(nx) * ny * nz;
  reduce_cells_kernel<<<kReduceBlocks, kBlock, 0, static_cast<cudaStream_t>(ex.stream)>>>(
      nx, ny, total, fits_32bit(total), op, f, partial);
  after_launch(ex, "reduce_cells", site);
}
double finish_gpu_reduction(const Exec& ex, double* partial, int blocks, ReduceOp op);
void finish_gpu_reduction_into(const Exec& ex, double* partial, int blocks, ReduceOp op,
                               double* dst);
double* gpu_reduce_scratch(const Exec& ex);
#endif

template <class F>
double reduce_cells_uncounted(const Exec& ex, int nx, int ny, int nz, ReduceOp op, F f,
                              const char* site = DFLUID_CALLER());

/// Reduces f(i, j, k) (returning double) over the box with op.
template <class F>
double reduce_cells(const Exec& ex, int nx, int ny, int nz, ReduceOp op, F f,
                    const char* site = DFLUID_CALLER()) {
  if (Index(nx) * ny * nz == 0) return op == ReduceOp::Sum ? 0.0 : reduce_identity(op);
  // GPU: reduce_cells_kernel + reduce_partials_kernel, then the 8-byte result is copied
  // to the host and the stream synchronized (finish_gpu_reduction).
  count_gpu_work(ex, 2, 1, std::int64_t(sizeof(double)));
  count_reduction_scratch(ex.state, sizeof(double) * (kReduceBlocks + 1));  // gpu_reduce_scratch
  return reduce_cells_uncounted(ex, nx, ny, nz, op, f, site);
}

template <class F>
double reduce_cells_uncounted(const Exec& ex, int nx, int ny, int nz, ReduceOp op, F f,
                              const char* site) {
  if (ex.gpu) {
#if defined(__CUDACC__)
    DeviceGuard guard(ex.device);
    double* partial = gpu_reduce_scratch(ex);
    launch_reduce_cells(ex, nx, ny, nz, op, f, partial, site);
    return finish_gpu_reduction(ex, partial, kReduceBlocks, op);
#else
    throw CudaError("internal: GPU reduction from a translation unit not compiled by nvcc");
#endif
  }
  (void)site;
  // CPU: fixed-size chunks summed in order, then chunk partials summed in order.
  // (Pairwise-like accuracy, and independent of how the loop might be split later.)
  constexpr Index kChunk = 4096;
  const Index total = Index(nx) * ny * nz;
  double result = reduce_identity(op);
  double chunk = reduce_identity(op);
  Index in_chunk = 0;
  for (int k = 0; k < nz; ++k)
    for (int j = 0; j < ny; ++j)
      for (int i = 0; i < nx; ++i) {
        chunk = reduce_combine(op, chunk, f(i, j, k));
        if (++in_chunk == kChunk) {
          result = reduce_combine(op, result, chunk);
          chunk = reduce_identity(op);
          in_chunk = 0;
        }
      }
  (void)total;
  return reduce_combine(op, result, chunk);
}

template <class F>
double sum_cells(const Exec& ex, const std::array<int, 3>& n, F f,
                 const char* site = DFLUID_CALLER()) {
  return reduce_cells(ex, n[0], n[1], n[2], ReduceOp::Sum, f, site);
}

/// *dst = v, enqueued (dst in the context's memory space). Not a template: nvcc
/// rejects an extended lambda in a function template instantiated with a
/// local lambda type, such as sum_cells_into below.
void set_scalar(const Exec& ex, double* dst, double v);

/// The same reduction (bitwise the same value), left in the context's memory
/// space: *dst (a device pointer on the GPU) receives the result when the work
/// enqueued so far has run. No host wait on the GPU, so that an iterative
/// solver can keep its scalars on the device (see krylov.hpp).
template <class F>
void sum_cells_into(const Exec& ex, const std::array<int, 3>& n, F f, double* dst,
                    const char* site = DFLUID_CALLER()) {
  // GPU: the two reduction kernels (an empty box: set_scalar, counted by for_each_cell).
  if (Index(n[0]) * n[1] * n[2] != 0) {
    count_gpu_work(ex, 2);
    count_reduction_scratch(ex.state, sizeof(double) * (kReduceBlocks + 1));
  }
  if (ex.gpu) {
#if defined(__CUDACC__)
    if (Index(n[0]) * n[1] * n[2] == 0) {
      set_scalar(ex, dst, 0.0);
      return;
    }
    DeviceGuard guard(ex.device);
    double* partial = gpu_reduce_scratch(ex);
    launch_reduce_cells(ex, n[0], n[1], n[2], ReduceOp::Sum, f, partial, site);
    finish_gpu_reduction_into(ex, partial, kReduceBlocks, ReduceOp::Sum, dst);
    return;
#else
    throw CudaError("internal: GPU reduction from a translation unit not compiled by nvcc");
#endif
  }
  if (Index(n[0]) * n[1] * n[2] == 0) {
    set_scalar(ex, dst, 0.0);  // what the GPU path does (one launch)
    return;
  }
  *dst = reduce_cells_uncounted(ex, n[0], n[1], n[2], ReduceOp::Sum, f, site);
}

/// Host wait: copies n doubles from `src` (in the context's memory space) to the host.
void read_scalars(const Exec& ex, const double* src, int n, double* dst);
template <class F>
double max_cells(const Exec& ex, const std::array<int, 3>& n, F f,
                 const char* site = DFLUID_CALLER()) {
  return reduce_cells(ex, n[0], n[1], n[2], ReduceOp::Max, f, site);
}

}  // namespace dfluid::detail
