// Non-template parts of the execution layer (compiled by nvcc when CUDA is on).
#include "core/exec.hpp"

#include <cstring>
#include <string>

#include "core/context_state.hpp"

namespace dfluid::detail {

Exec exec_of(const Context& ctx) {
  return Exec{ctx.on_gpu(), ctx.stream(), &ctx.state()};
}

void check_launch(const char* what) {
#if defined(__CUDACC__)
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    throw CudaError(std::string("CUDA launch failed in ") + what + ": " + cudaGetErrorString(e));
#else
  (void)what;
#endif
}

#if defined(__CUDACC__)
__global__ void reduce_partials_kernel(int n, ReduceOp op, const double* partial, double* out) {
  using BlockReduce = cub::BlockReduce<double, kBlock>;
  __shared__ typename BlockReduce::TempStorage tmp;
  double acc = reduce_identity(op);
  for (int t = threadIdx.x; t < n; t += blockDim.x)
    acc = reduce_combine(op, acc, partial[t]);
  double r =
      op == ReduceOp::Sum ? BlockReduce(tmp).Sum(acc) : BlockReduce(tmp).Reduce(acc, MaxOp{});
  if (threadIdx.x == 0) *out = r;
}

double* gpu_reduce_scratch(const Exec& ex) {
  return static_cast<double*>(ex.state->scratch(sizeof(double) * (kReduceBlocks + 1)));
}

void finish_gpu_reduction_into(const Exec& ex, double* partial, int blocks, ReduceOp op,
                               double* dst) {
  reduce_partials_kernel<<<1, kBlock, 0, static_cast<cudaStream_t>(ex.stream)>>>(blocks, op,
                                                                                 partial, dst);
  check_launch("reduce_partials");
}

double finish_gpu_reduction(const Exec& ex, double* partial, int blocks, ReduceOp op) {
  cudaStream_t st = static_cast<cudaStream_t>(ex.stream);
  reduce_partials_kernel<<<1, kBlock, 0, st>>>(blocks, op, partial, partial + kReduceBlocks);
  check_launch("reduce_partials");
  double* host = static_cast<double*>(ex.state->pinned(sizeof(double)));
  cudaMemcpyAsync(host, partial + kReduceBlocks, sizeof(double), cudaMemcpyDeviceToHost, st);
  cudaError_t e = cudaStreamSynchronize(st);  // host wait: the caller needs the value
  if (e != cudaSuccess)
    throw CudaError(std::string("CUDA error in reduction: ") + cudaGetErrorString(e));
  return *host;
}
#endif

void set_scalar(const Exec& ex, double* dst, double v) {
  for_each_cell(
      ex, 1, 1, 1, DFLUID_LAMBDA(int, int, int) { *dst = v; });
}

void read_scalars(const Exec& ex, const double* src, int n, double* dst) {
  count_gpu_work(ex, 0, 1, std::int64_t(sizeof(double)) * n);  // GPU: copy + host wait
  if (!ex.gpu) {
    std::memcpy(dst, src, sizeof(double) * std::size_t(n));
    return;
  }
#if defined(__CUDACC__)
  cudaStream_t st = static_cast<cudaStream_t>(ex.stream);
  double* host = static_cast<double*>(ex.state->pinned(sizeof(double) * std::size_t(n)));
  cudaMemcpyAsync(host, src, sizeof(double) * std::size_t(n), cudaMemcpyDeviceToHost, st);
  cudaError_t e = cudaStreamSynchronize(st);  // host wait: the caller needs the values
  if (e != cudaSuccess)
    throw CudaError(std::string("CUDA error reading solver scalars: ") + cudaGetErrorString(e));
  std::memcpy(dst, host, sizeof(double) * std::size_t(n));
#else
  throw CudaError("internal: GPU scalar read from a translation unit not compiled by nvcc");
#endif
}

}  // namespace dfluid::detail
