// Deterministic scatter-add for adjoint kernels.
//
// The transpose of an interpolation (a gather) is a scatter: every sample adds
// weight * cotangent into the 2^D stencil corners it read, and many samples
// may hit the same corner. Float atomics would make the sums depend on thread
// order, so gradients would differ from run to run. Instead:
//
//  * CPU path: one serial loop over the samples (for_each_cell_serial: fixed
//    k, j, i order, one thread) adding straight into the targets. Exact and
//    deterministic, whatever the number of OpenMP threads.
//  * GPU path: contributions are rounded to 64-bit fixed point and summed
//    with integer atomicAdd (unsigned long long, two's complement), which is
//    associative, so the result is independent of thread order. The scale is
//    a power of two chosen from a first pass that sums |contribution| over all
//    samples (a deterministic reduction): with S = that sum, every partial sum
//    of any target is bounded by S, and scale = 2^floor(log2(2^61 / S)) keeps
//    it below 2^61 (headroom for the rounding of each term). The absolute
//    resolution is S / 2^61 (about 1e-12 of a typical entry on a 128^3 grid).
//    A last pass converts the integers back and adds them to the targets in
//    target order. Cost: the cell function runs twice (sum pass + scatter).
//    A NaN or Inf among the contributions (S not finite) falls back to float
//    atomics: NaN/Inf where they land, as on the CPU path.
//
// Context::set_accumulation(Accumulation::Atomic) swaps both for plain float
// atomics (GPU atomicAdd straight into the targets; CPU: the loop on OpenMP
// threads with atomic adds): one pass, no fixed-point buffers, order-dependent
// rounding. It exists so that dfluid-bench can report what determinism costs.
//
// A cell function is a functor f(i, j, k, sink) calling sink.add(target,
// offset, value), where offset indexes the target's view (data[offset]).
// Include only from cuda/*.cpp (see exec.hpp).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "dfluid/memory.hpp"
#include "core/exec.hpp"

namespace dfluid::detail {

constexpr int kMaxScatterTargets = 5;

/// Sink of a scatter pass: adds into the targets (CPU) or into the
/// fixed-point accumulators (GPU device code).
template <class T>
struct ScatterSink {
  T* direct[kMaxScatterTargets] = {};
  unsigned long long* fixed[kMaxScatterTargets] = {};
  double scale = 1.0;
  int atomic = 0;  ///< 1: float atomics into `direct` (Accumulation::Atomic)
  DFLUID_HD DFLUID_FORCEINLINE void add(int target, Index off, T v) const {
#if defined(__CUDA_ARCH__)
    if (atomic) {
      atomicAdd(direct[target] + off, v);
      return;
    }
    const long long q = llrint(double(v) * scale);
    atomicAdd(fixed[target] + off, static_cast<unsigned long long>(q));
#else
    if (atomic) {
#if defined(_OPENMP)
#pragma omp atomic
#endif
      direct[target][off] += v;
      return;
    }
    direct[target][off] += v;
#endif
  }
};

/// Sink of the GPU sizing pass: sums |value| (nothing is written).
template <class T>
struct AbsSumSink {
  double s = 0;
  DFLUID_HD DFLUID_FORCEINLINE void add(int, Index, T v) { s += v < T(0) ? -double(v) : double(v); }
};

/// Runs f(i, j, k, sink) over the box `ext`, scattering into `targets`
/// (views; targets may be the same view, contributions then add up). The
/// targets are accumulated into (+=), never overwritten.
template <class T, class F>
void scatter_cells(const Context& ctx, const Exec& ex, const std::array<int, 3>& ext,
                   const std::array<View<T>, kMaxScatterTargets>& targets, int ntargets, F f) {
  const bool atomic = ctx.accumulation() == Accumulation::Atomic;
  if (!ex.gpu) {
    // Count what the GPU path below launches (it counts itself, through for_each_cell and
    // sum_cells): Atomic: one kernel. Deterministic: the sizing reduction (2 kernels, a
    // host wait, 8 bytes back), the scatter pass and one conversion per target, assuming
    // a finite non-zero sum of magnitudes (the GPU stops after the reduction when it is 0
    // and launches one atomic pass instead when it is not finite).
    if (Index(ext[0]) * ext[1] * ext[2] != 0) {
      if (atomic) {
        count_gpu_work(ex, 1);
      } else {
        int converted = 0;
        for (int t = 0; t < ntargets; ++t)
          if (targets[t].data && targets[t].size() > 0) ++converted;
        count_gpu_work(ex, 2 + 1 + converted, 1, std::int64_t(sizeof(double)));
      }
    }
    ScatterSink<T> sink;
    for (int t = 0; t < ntargets; ++t)
      sink.direct[t] = targets[t].data;
    if (atomic) {
      sink.atomic = 1;
      const int nx = ext[0], ny = ext[1], nz = ext[2];
#if defined(_OPENMP)
#pragma omp parallel for collapse(2) schedule(static) if (Index(nx) * ny * nz >= kParallelCells)
#endif
      for (int k = 0; k < nz; ++k)
        for (int j = 0; j < ny; ++j)
          for (int i = 0; i < nx; ++i)
            f(i, j, k, sink);
      return;
    }
    // Serial on purpose: samples add into shared corners (for_each_cell may use threads).
    for_each_cell_serial(ext[0], ext[1], ext[2], [&](int i, int j, int k) { f(i, j, k, sink); });
    return;
  }
#if defined(__CUDACC__)
  // Float atomics straight into the targets: Accumulation::Atomic, and the
  // fallback when fixed point cannot represent the sum (see below).
  auto atomic_scatter = [&] {
    ScatterSink<T> sink;
    sink.atomic = 1;
    for (int t = 0; t < ntargets; ++t)
      sink.direct[t] = targets[t].data;
    for_each_cell(
        ex, ext, DFLUID_LAMBDA(int i, int j, int k) { f(i, j, k, sink); });
  };
  if (atomic) {
    atomic_scatter();
    return;
  }
  const double total = sum_cells(
      ex, ext, DFLUID_LAMBDA(int i, int j, int k) {
        AbsSumSink<T> s;
        f(i, j, k, s);
        return s.s;
      });
  if (total == 0) return;  // nothing to add
  // NaN or Inf among the contributions (or a sum of magnitudes beyond the
  // double range): fixed point would turn them into finite garbage. Float
  // atomics give what the CPU path gives there, NaN/Inf at the corners that
  // were hit, whatever the order.
  if (!std::isfinite(total)) {
    atomic_scatter();
    return;
  }
  int e = 0;
  std::frexp(total, &e);  // total < 2^e
  ScatterSink<T> sink;
  // 2^(61 - e), capped where a tiny total would overflow the scale (the sums
  // stay below 2^61 all the same; resolution 2^-1000).
  sink.scale = std::ldexp(1.0, std::min(61 - e, 1000));
  // Accumulators from the context's pool (no allocation once warmed up), zeroed.
  TempBuffer acc[kMaxScatterTargets];
  for (int t = 0; t < ntargets; ++t) {
    const View<T>& v = targets[t];
    if (!v.data) continue;
    const std::size_t bytes =
        sizeof(unsigned long long) * std::size_t(v.offset(v.nx - 1, v.ny - 1, v.nz - 1) + 1);
    acc[t] = TempBuffer(ctx, bytes);
    zero_bytes(ctx, acc[t].data(), bytes, MemorySpace::Device);
    sink.fixed[t] = acc[t].as<unsigned long long>();
  }
  for_each_cell(
      ex, ext, DFLUID_LAMBDA(int i, int j, int k) { f(i, j, k, sink); });
  const double inv = 1.0 / sink.scale;
  for (int t = 0; t < ntargets; ++t) {
    View<T> v = targets[t];
    if (!v.data) continue;
    const unsigned long long* a = sink.fixed[t];
    for_each_cell(
        ex, v.nx, v.ny, v.nz, DFLUID_LAMBDA(int i, int j, int k) {
          v(i, j, k) += T(double(static_cast<long long>(a[v.offset(i, j, k)])) * inv);
        });
  }
  // acc goes back to the pool here; work on the context is stream-ordered, so
  // the next user of a block runs after the kernels above.
#else
  (void)ctx;
  throw CudaError("internal: GPU scatter from a translation unit not compiled by nvcc");
#endif
}

}  // namespace dfluid::detail
