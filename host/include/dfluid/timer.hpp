// Timing of work enqueued on a context's stream: CUDA events on the GPU path,
// a steady clock on the CPU path. For benchmarks; not used inside a step.
#pragma once

#include <chrono>
#include <cstddef>

#include "dfluid/context.hpp"

namespace dfluid {

class StreamTimer {
 public:
  explicit StreamTimer(const Context& ctx);
  ~StreamTimer();
  StreamTimer(const StreamTimer&) = delete;
  StreamTimer& operator=(const StreamTimer&) = delete;

  void start();  ///< Records a start mark on the stream.
  void stop();   ///< Records a stop mark on the stream.
  /// Host wait: milliseconds between the marks (waits for the stop mark).
  double elapsed_ms() const;

 private:
  Context ctx_;
  void* begin_ = nullptr;  // cudaEvent_t on the GPU path
  void* end_ = nullptr;
  std::chrono::steady_clock::time_point t0_, t1_;
};

/// Host wait. Measures the bandwidth of a plain copy of `bytes` between two
/// buffers in the context's memory (device-to-device on a GPU), counting
/// read + write bytes, median of `repeats` runs after one warm-up. In GB/s.
/// This is the ceiling that bandwidth-bound kernels are compared against.
double measure_copy_bandwidth(const Context& ctx, std::size_t bytes, int repeats = 10);

}  // namespace dfluid
