// A CUDA translation unit of the downstream project: dfluid works on device
// memory the caller owns, on the caller's stream.
#include <cuda_runtime.h>

#include <dfluid/dfluid.hpp>

int run_device_wrap_check() {
  using namespace dfluid;
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  Context ctx = Context::cuda(stream);
  Grid g = Grid::make_3d(8, 8, 8, 1.0);
  float* d = nullptr;
  cudaMalloc(&d, sizeof(float) * g.cells());
  Field<float> f = Field<float>::wrap(g, Location::Cell, d, MemorySpace::Device);
  fill(ctx, f, 0.25f);
  const double total = sum(ctx, f);
  cudaFree(d);
  cudaStreamDestroy(stream);
  return total == 0.25 * g.cells() ? 0 : 1;
}
