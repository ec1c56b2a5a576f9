// Several deterministic reductions over the same cells in one pass, finished on
// the device (include from cuda/*.cpp only).
//
// Why: the Krylov solver needs r.z together with the sums of r and z over each
// floating region (the null space), and the check needs |b - A x|^2 together with
// the region sums of x. One pass that reads each field once replaces a reduction
// per quantity, and the one-thread "finish" functor turns the sums into the solver's
// scalars (alpha, beta, region means) in the same launch, so no separate scalar
// kernel is needed.
//
//   multi_reduce_into<M, MaxMask>(ex, n, f, fin);
//     f(i, j, k, double v[M])   writes the M per-cell values (it may also write its own
//                               cell of other fields: each cell is visited once)
//     output m is a sum, or a max when bit m of MaxMask is set (a template argument: the
//     CPU loop's per-cell combine then has no branch per output and cell)
//     fin(const double out[M])  runs once (one thread) after the reduction, on the device
//
// GPU: two launches (the per-block kernel and the partials kernel, which calls fin), with
// kMultiBlocks blocks of kMultiThreads: M * kMultiBlocks partials fit the context's
// reduction scratch (kReduceBlocks + 1 doubles, shared with every reduction on the stream),
// so a solver needs no memory of its own for them.
// CPU: fixed 4096-cell chunks (the chunking of reduce_cells), each summed in cell order,
// chunks run on OpenMP threads and their partials are combined in chunk order; so every
// output is bitwise what reduce_cells gives for it alone, for any thread count.
#pragma once

#include <vector>

#include "core/exec.hpp"

namespace dfluid::detail {

constexpr int kMultiBlocks = 128;
constexpr int kMultiThreads = 1024;
constexpr int kMultiMaxOutputs = 8;
static_assert(kMultiMaxOutputs * kMultiBlocks <= kReduceBlocks + 1, "fits the reduction scratch");

#if defined(__CUDACC__)
template <int M, class F>
__global__ void __launch_bounds__(kMultiThreads)
    multi_reduce_kernel(int nx, int ny, int nz, unsigned max_mask, F f, double* partial) {
  using BlockReduce = cub::BlockReduce<double, kMultiThreads>;
  __shared__ typename BlockReduce::TempStorage tmp;
  double acc[M];
  for (int m = 0; m < M; ++m)
    acc[m] = reduce_identity((max_mask >> m) & 1u ? ReduceOp::Max : ReduceOp::Sum);
  const Index total = Index(nx) * ny * nz;
  for (Index t = Index(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += Index(blockDim.x) * gridDim.x) {
    const int i = int(t % nx);
    const Index r = t / nx;
    double v[M];
    f(i, int(r % ny), int(r / ny), v);
    for (int m = 0; m < M; ++m)
      acc[m] = reduce_combine((max_mask >> m) & 1u ? ReduceOp::Max : ReduceOp::Sum, acc[m], v[m]);
  }
  for (int m = 0; m < M; ++m) {
    const double b = (max_mask >> m) & 1u ? BlockReduce(tmp).Reduce(acc[m], MaxOp{})
                                          : BlockReduce(tmp).Sum(acc[m]);
    if (threadIdx.x == 0) partial[m * kMultiBlocks + blockIdx.x] = b;
    __syncthreads();  // tmp is reused by the next output
  }
}

template <int M, class Fin>
__global__ void __launch_bounds__(kMultiThreads)
    multi_reduce_finish_kernel(unsigned max_mask, const double* partial, Fin fin) {
  using BlockReduce = cub::BlockReduce<double, kMultiThreads>;
  __shared__ typename BlockReduce::TempStorage tmp;
  __shared__ double out[M];
  for (int m = 0; m < M; ++m) {
    const ReduceOp op = (max_mask >> m) & 1u ? ReduceOp::Max : ReduceOp::Sum;
    double acc = reduce_identity(op);
    for (int t = threadIdx.x; t < kMultiBlocks; t += blockDim.x)
      acc = reduce_combine(op, acc, partial[m * kMultiBlocks + t]);
    const double r =
        op == ReduceOp::Max ? BlockReduce(tmp).Reduce(acc, MaxOp{}) : BlockReduce(tmp).Sum(acc);
    if (threadIdx.x == 0) out[m] = r;
    __syncthreads();
  }
  if (threadIdx.x == 0) fin(static_cast<const double*>(out));
}
#endif

template <int M, unsigned MaxMask = 0u, class F, class Fin>
void multi_reduce_into(const Exec& ex, const std::array<int, 3>& n, F f, Fin fin) {
  static_assert(M >= 1 && M <= kMultiMaxOutputs, "multi_reduce_into: 1 to 8 outputs");
  count_gpu_work(ex, 2);  // the per-block kernel and the partials kernel (which runs fin)
  count_reduction_scratch(ex.state, sizeof(double) * (kReduceBlocks + 1));  // as sum_cells_into
  const Index total = Index(n[0]) * n[1] * n[2];
  if (ex.gpu) {
#if defined(__CUDACC__)
    cudaStream_t st = static_cast<cudaStream_t>(ex.stream);
    double* partials = gpu_reduce_scratch(ex);
    multi_reduce_kernel<M>
        <<<kMultiBlocks, kMultiThreads, 0, st>>>(n[0], n[1], n[2], MaxMask, f, partials);
    check_launch("multi_reduce");
    multi_reduce_finish_kernel<M><<<1, kMultiThreads, 0, st>>>(MaxMask, partials, fin);
    check_launch("multi_reduce_finish");
    return;
#else
    throw CudaError("internal: GPU reduction from a translation unit not compiled by nvcc");
#endif
  }
  auto op_of = [](int m) { return (MaxMask >> m) & 1u ? ReduceOp::Max : ReduceOp::Sum; };
  constexpr Index kChunk = 4096;  // as reduce_cells_uncounted
  const Index chunks = (total + kChunk - 1) / kChunk;
  // Host scratch for the chunk partials, kept per thread between calls (not device memory:
  // the GPU path keeps its partials in `partials`).
  thread_local std::vector<double> part;
  if (part.size() < std::size_t(chunks) * M) part.resize(std::size_t(chunks) * M);
  double* pp = part.data();
  const int nx = n[0], ny = n[1];
  // By value: each thread runs its own copy (see for_each_cell: through a shared closure,
  // the captured views are reloaded for every cell).
  auto run_chunk = [=](Index c) {
    double acc[M];
    for (int m = 0; m < M; ++m)
      acc[m] = reduce_identity(op_of(m));
    const Index t0 = c * kChunk, t1 = t0 + kChunk < total ? t0 + kChunk : total;
    int i = int(t0 % nx);
    Index r = t0 / nx;
    int j = int(r % ny), k = int(r / ny);
    for (Index t = t0; t < t1; ++t) {
      double v[M];
      f(i, j, k, v);
      for (int m = 0; m < M; ++m)
        acc[m] = reduce_combine(op_of(m), acc[m], v[m]);
      if (++i == nx) {
        i = 0;
        if (++j == ny) {
          j = 0;
          ++k;
        }
      }
    }
    for (int m = 0; m < M; ++m)
      pp[std::size_t(c) * M + m] = acc[m];
  };
#if defined(_OPENMP)
  if (total >= kParallelCells) {
#pragma omp parallel
    {
      const auto run = run_chunk;
#pragma omp for schedule(static)
      for (Index c = 0; c < chunks; ++c)
        run(c);
    }
  } else
#endif
  {
    for (Index c = 0; c < chunks; ++c)
      run_chunk(c);
  }
  double out[M];
  for (int m = 0; m < M; ++m) {
    out[m] = reduce_identity(op_of(m));
    for (Index c = 0; c < chunks; ++c)
      out[m] = reduce_combine(op_of(m), out[m], pp[std::size_t(c) * M + m]);
  }
  fin(static_cast<const double*>(out));
}

}  // namespace dfluid::detail
