#include "dfluid/timer.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "core/cuda_check.hpp"
#include "dfluid/error.hpp"
#include "dfluid/memory.hpp"

#if DFLUID_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace dfluid {

StreamTimer::StreamTimer(const Context& ctx) : ctx_(ctx) {
#if DFLUID_WITH_CUDA
  if (ctx_.on_gpu()) {
    detail::DeviceGuard guard(ctx_.cuda_device());
    cudaEvent_t a = nullptr, b = nullptr;
    detail::cuda_check(cudaEventCreate(&a), "StreamTimer: cudaEventCreate");
    begin_ = a;  // the destructor does not run when the constructor throws: free `a` here
    try {
      detail::cuda_check(cudaEventCreate(&b), "StreamTimer: cudaEventCreate");
    } catch (...) {
      detail::cuda_warn(cudaEventDestroy(a), "StreamTimer: cudaEventDestroy");
      throw;
    }
    end_ = b;
  }
#endif
}

StreamTimer::~StreamTimer() {
#if DFLUID_WITH_CUDA
  if (begin_)
    detail::cuda_warn(cudaEventDestroy(static_cast<cudaEvent_t>(begin_)),
                      "StreamTimer: cudaEventDestroy");
  if (end_)
    detail::cuda_warn(cudaEventDestroy(static_cast<cudaEvent_t>(end_)),
                      "StreamTimer: cudaEventDestroy");
#endif
}

void StreamTimer::start() {
#if DFLUID_WITH_CUDA
  if (begin_) {
    detail::DeviceGuard guard(ctx_.cuda_device());
    detail::cuda_check(
        cudaEventRecord(static_cast<cudaEvent_t>(begin_), static_cast<cudaStream_t>(ctx_.stream())),
        "StreamTimer::start: cudaEventRecord");
    return;
  }
#endif
  t0_ = std::chrono::steady_clock::now();
}

void StreamTimer::stop() {
#if DFLUID_WITH_CUDA
  if (end_) {
    detail::DeviceGuard guard(ctx_.cuda_device());
    detail::cuda_check(
        cudaEventRecord(static_cast<cudaEvent_t>(end_), static_cast<cudaStream_t>(ctx_.stream())),
        "StreamTimer::stop: cudaEventRecord");
    return;
  }
#endif
  t1_ = std::chrono::steady_clock::now();
}

double StreamTimer::elapsed_ms() const {
#if DFLUID_WITH_CUDA
  if (end_) {
    detail::DeviceGuard guard(ctx_.cuda_device());
    detail::cuda_check(cudaEventSynchronize(static_cast<cudaEvent_t>(end_)),
                       "StreamTimer: cudaEventSynchronize");
    float ms = 0;
    detail::cuda_check(
        cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(begin_), static_cast<cudaEvent_t>(end_)),
        "StreamTimer: cudaEventElapsedTime");
    return ms;
  }
#endif
  return std::chrono::duration<double, std::milli>(t1_ - t0_).count();
}

double measure_copy_bandwidth(const Context& ctx, std::size_t bytes, int repeats) {
  if (bytes == 0 || repeats < 1)
    throw InvalidArgument("measure_copy_bandwidth: bytes and repeats must be > 0");
  Buffer<unsigned char> a(ctx, Index(bytes), ctx.memory_space());
  Buffer<unsigned char> b(ctx, Index(bytes), ctx.memory_space());
  StreamTimer t(ctx);
  std::vector<double> ms;
  for (int r = 0; r <= repeats; ++r) {
    t.start();
    detail::copy_bytes(ctx, b.data(), b.space(), a.data(), a.space(), bytes);
    t.stop();
    if (r > 0) ms.push_back(t.elapsed_ms());  // r = 0 is the warm-up
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  const double median = std::max(ms[ms.size() / 2], 1e-6);
  return 2.0 * double(bytes) / (median * 1e-3) / 1e9;
}

}  // namespace dfluid
