// Non-template parts of the execution layer (compiled by nvcc when CUDA is on).
#include "core/exec.hpp"

#include <cstring>
#include <string>

#include "core/context_state.hpp"
#include "core/cuda_check.hpp"

namespace dfluid::detail {

Exec exec_of(const Context& ctx) {
  return Exec{ctx.on_gpu(), ctx.stream(), &ctx.state(), ctx.cuda_device(), ctx.sync_launches()};
}

void check_launch(const char* what) {
#if defined(__CUDACC__)
  cuda_check(cudaGetLastError(), std::string("CUDA launch failed in ") + what);
#else
  (void)what;
#endif
}

void after_launch(const Exec& ex, const char* kernel, const char* site) {
#if defined(__CUDACC__)
  const std::string name = std::string(kernel) + " (launched from " + site + ")";
  check_launch(name.c_str());
  if (ex.sync)  // counted as a host wait by count_gpu_work
    cuda_check(cudaStreamSynchronize(static_cast<cudaStream_t>(ex.stream)),
               "DFLUID_SYNC_LAUNCHES: kernel " + name + " failed");
#else
  (void)ex;
  (void)kernel;
  (void)site;
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
  after_launch(ex, "reduce_partials", "sum_cells_into");
}

double finish_gpu_reduction(const Exec& ex, double* partial, int blocks, ReduceOp op) {
  cudaStream_t st = static_cast<cudaStream_t>(ex.stream);
  reduce_partials_kernel<<<1, kBlock, 0, st>>>(blocks, op, partial, partial + kReduceBlocks);
  after_launch(ex, "reduce_partials", "reduce_cells");
  double* host = static_cast<double*>(ex.state->pinned(sizeof(double)));
  cuda_check(
      cudaMemcpyAsync(host, partial + kReduceBlocks, sizeof(double), cudaMemcpyDeviceToHost, st),
      "reduction: cudaMemcpyAsync of the result");
  // host wait: the caller needs the value
  cuda_check(cudaStreamSynchronize(st), "reduction: cudaStreamSynchronize");
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
  DeviceGuard guard(ex.device);
  cudaStream_t st = static_cast<cudaStream_t>(ex.stream);
  double* host = static_cast<double*>(ex.state->pinned(sizeof(double) * std::size_t(n)));
  cuda_check(
      cudaMemcpyAsync(host, src, sizeof(double) * std::size_t(n), cudaMemcpyDeviceToHost, st),
      "reading solver scalars: cudaMemcpyAsync");
  // host wait: the caller needs the values
  cuda_check(cudaStreamSynchronize(st), "reading solver scalars: cudaStreamSynchronize");
  std::memcpy(dst, host, sizeof(double) * std::size_t(n));
#else
  throw CudaError("internal: GPU scalar read from a translation unit not compiled by nvcc");
#endif
}

}  // namespace dfluid::detail
