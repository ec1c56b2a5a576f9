// Deterministic scatter-add for adjoint kernels.
//
// The transpose of an interpolation (a gather) is a scatter: every sample adds
// weight * cotangent into the 2^D stencil corners it read, and many samples
// may hit the same corner. Float atomics would make the sums depend on thread
// order, so gradients would differ from run to run. Two deterministic schemes,
// one per path (the choice, and why not a gather, is explained at the end):
//
//  * CPU path: coloured slabs. The samples are cut into fixed slabs of `t`
//    rows along their slowest axis (t depends only on the array's size). Slab c
//    adds directly into the targets' rows [c t - t/2, (c + 1) t + t/2) (its
//    window); slabs of one colour (c even, then c odd) run on OpenMP threads at
//    the same time, and their windows do not overlap, so no two threads touch
//    one target. A contribution that lands outside its slab's window (a
//    departure point more than about t/2 - 1 rows away) is added afterwards by
//    one thread, slab by slab, re-running only the samples that had one. Every target
//    therefore receives its additions in one fixed order (the even slab's, the
//    odd slab's, then the leftovers in slab order) whatever the thread count:
//    bitwise the same result for 1, 2, ... threads, in T, with no workspace and
//    one pass of the cell function.
//  * GPU path: 64-bit fixed point with a scale per target cell. A sizing pass
//    records, per target cell, the largest binary exponent E of its
//    contributions (integer atomicMax) and their number n (integer atomicAdd);
//    the scatter pass rounds each contribution v to q = rint(v 2^s) with
//    s = 61 - L - e, where |v| < 2^e for every contribution to that cell and
//    n <= 2^L, and adds q with integer atomicAdd (two's complement, associative:
//    the result does not depend on the order); |sum q| <= n 2^(61-L) <= 2^61.
//    A last pass per target converts sum q 2^-s back and adds it. Each cell's
//    resolution is 2^(L-62) of its own largest contribution, so a small
//    gradient next to a large one keeps its digits (one scale for the whole
//    field, as before, resolved 2^-61 of the sum of all |contributions|: a
//    1e-12 entry beside 1e+3 ones kept none). The scale never leaves the
//    device: no host wait. A NaN or Inf contribution marks its cell (E = 2047);
//    such a cell collects NaN/+Inf/-Inf flags instead of a sum and becomes
//    NaN, +Inf or -Inf as a serial float sum would (NaN, or +Inf with -Inf,
//    gives NaN). Workspace: one pool block of kFixedBytesPerElement bytes per
//    target element (scatter_workspace_bytes in dfluid/advection.hpp).
//    Accumulation::FixedPoint runs this scheme on the CPU path too (serially),
//    so that it is tested without a GPU.
//
// Why not a gather (each target visiting the departure points that can land on
// it)? A departure point can be any distance away (dt |u| / dx is not bounded
// by the API), so a target would visit (2R+1)^D samples for a displacement R
// known only after a device-side reduction, recomputing each departure point
// and stencil (including RK2 midpoints and MacCormack's second trace): at
// R = 3 in 3D that is 343 cell-function evaluations per target instead of 2
// (fixed point) or 1 (slabs). The slabs keep the gather's exactness in T on
// the CPU, where threads are few; the fixed point scales to GPU parallelism.
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
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "dfluid/memory.hpp"
#include "core/exec.hpp"
#include "core/scatter_workspace.hpp"

namespace dfluid::detail {

constexpr int kMaxScatterTargets = 5;

/// Biased exponent that marks a non-finite contribution (IEEE double's Inf/NaN).
constexpr unsigned kFixedNonFinite = 2047;
/// Counts stop growing here (a cell with more contributions uses the bound
/// from the number of samples instead; see FixedSizeSink).
constexpr unsigned kFixedCountCap = 0x80000000u;
/// Flags of a non-finite cell (in place of its sum).
constexpr unsigned long long kFlagNan = 1, kFlagPosInf = 2, kFlagNegInf = 4;

/// True when the scatter of `ctx` uses the fixed-point workspace.
inline bool scatter_uses_fixed_point(const Context& ctx) {
  const Accumulation a = ctx.accumulation();
  return a == Accumulation::FixedPoint || (ctx.on_gpu() && a == Accumulation::Deterministic);
}

/// Biased IEEE exponent of v as a double, so that |v| < 2^(E - 1022): 1 for
/// zero and subnormals (|v| < 2^-1022), kFixedNonFinite for Inf and NaN.
DFLUID_HD inline unsigned fixed_exponent(double v) {
#if defined(__CUDA_ARCH__)
  const unsigned long long b = static_cast<unsigned long long>(__double_as_longlong(v));
#else
  unsigned long long b;
  std::memcpy(&b, &v, sizeof b);
#endif
  const unsigned e = unsigned(b >> 52) & 0x7FFu;
  return e == 0 ? 1u : e;
}

/// The double with IEEE bits b.
DFLUID_HD inline double fixed_from_bits(unsigned long long b) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(b));
#else
  double d;
  std::memcpy(&d, &b, sizeof d);
  return d;
#endif
}

/// Smallest L with n <= 2^L (n >= 1).
DFLUID_HD inline int fixed_count_bits(unsigned n) {
  if (n <= 1) return 0;
#if defined(__CUDA_ARCH__)
  return 32 - __clz(n - 1);
#else
  return 32 - __builtin_clz(n - 1);
#endif
}

/// Scale exponent s of a cell (q = rint(v 2^s)) from its largest exponent E and
/// its count n (saturated counts use `sat_bits`): |v| 2^s < 2^(61 - L).
DFLUID_HD inline int fixed_shift(unsigned e, unsigned n, int sat_bits) {
  const int bits = n >= kFixedCountCap ? sat_bits : fixed_count_bits(n);
  return 61 - bits - (int(e) - 1022);
}

// Every sink also answers direct_range(target, first, last): the target's data when each
// offset in [first, last] may be added into with a plain `data[off] += v` (exactly what add()
// would do with it, in the caller's order), else nullptr. A cell function that knows the span
// of the offsets it adds into (a stencil inside the array, a node's taps) asks once and then
// adds without the per-add test of a slab's window: about half of an adjoint sample's scatter
// work on the CPU, bitwise the same sums. Sinks that round, flag or use atomics answer nullptr.

/// Sink of a direct pass: adds into the targets (CPU serial, CPU or GPU float
/// atomics).
template <class T>
struct ScatterSink {
  T* direct[kMaxScatterTargets] = {};
  int atomic = 0;  ///< 1: float atomics into `direct` (Accumulation::Atomic)
  DFLUID_HD DFLUID_FORCEINLINE T* direct_range(int target, Index, Index) const {
#if defined(__CUDA_ARCH__)
    (void)target;
    return nullptr;
#else
    return atomic ? nullptr : direct[target];
#endif
  }
  DFLUID_HD DFLUID_FORCEINLINE void add(int target, Index off, T v) const {
#if defined(__CUDA_ARCH__)
    atomicAdd(direct[target] + off, v);
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

/// Sink of a CPU slab: adds the contributions whose offset is inside the
/// slab's window of each target ([lo, hi)) when `inside`, only the others when
/// not; `missed` records that an inside pass skipped one.
template <class T>
struct WindowSink {
  T* direct[kMaxScatterTargets] = {};
  Index lo[kMaxScatterTargets] = {};
  Index len[kMaxScatterTargets] = {};  ///< hi - lo
  bool inside = true;
  bool missed = false;
  /// The target's data when the slab's pass adds every offset in [first, last] (inside
  /// the window), else nullptr (the leftover pass, or a span that leaves the window).
  DFLUID_HD DFLUID_FORCEINLINE T* direct_range(int target, Index first, Index last) const {
    const std::uint64_t n = std::uint64_t(len[target]);
    const bool in = std::uint64_t(first - lo[target]) < n && std::uint64_t(last - lo[target]) < n;
    return inside && in ? direct[target] : nullptr;
  }
  DFLUID_HD DFLUID_FORCEINLINE void add(int target, Index off, T v) {
    // lo <= off < hi as one unsigned comparison (off < lo wraps to a large value)
    const bool in = std::uint64_t(off - lo[target]) < std::uint64_t(len[target]);
    if (in == inside)
      direct[target][off] += v;
    else
      missed = true;
  }
};

/// Sink of the fixed-point sizing pass: per target cell, the largest exponent
/// and the number of non-zero contributions (size[2 off], size[2 off + 1]).
template <class T>
struct FixedSizeSink {
  unsigned* size[kMaxScatterTargets] = {};
  DFLUID_HD DFLUID_FORCEINLINE T* direct_range(int, Index, Index) const { return nullptr; }
  DFLUID_HD DFLUID_FORCEINLINE void add(int target, Index off, T v) const {
    if (v == T(0)) return;  // adds nothing, in either pass
    unsigned* s = size[target] + 2 * off;
    const unsigned e = fixed_exponent(double(v));
#if defined(__CUDA_ARCH__)
    if (s[0] < e) atomicMax(s, e);
    // Stops at the cap (threads that read below it add one each: far fewer than
    // 2^31 run at once), so a count never wraps around.
    if (*static_cast<volatile unsigned*>(s + 1) < kFixedCountCap) atomicAdd(s + 1, 1u);
#else
    if (s[0] < e) s[0] = e;  // the CPU path runs this pass on one thread
    if (s[1] < kFixedCountCap) ++s[1];
#endif
  }
};

/// Sink of the fixed-point scatter pass: rounds each contribution with its
/// cell's scale and adds it to the 64-bit sum (flags for non-finite cells).
template <class T>
struct FixedValueSink {
  unsigned long long* acc[kMaxScatterTargets] = {};
  const unsigned* size[kMaxScatterTargets] = {};
  int sat_bits = 0;
  DFLUID_HD DFLUID_FORCEINLINE T* direct_range(int, Index, Index) const { return nullptr; }
  DFLUID_HD DFLUID_FORCEINLINE void add(int target, Index off, T v) const {
    if (v == T(0)) return;
    const unsigned* s = size[target] + 2 * off;
    unsigned long long* a = acc[target] + off;
    if (s[0] == kFixedNonFinite) {
      const double d = double(v);
      unsigned long long flag;
      if (d != d)
        flag = kFlagNan;
      else if (d > DBL_MAX)
        flag = kFlagPosInf;
      else if (d < -DBL_MAX)
        flag = kFlagNegInf;
      else
        return;  // finite: nothing next to an infinity or a NaN
#if defined(__CUDA_ARCH__)
      atomicOr(a, flag);
#else
      *a |= flag;
#endif
      return;
    }
    const long long q = llrint(ldexp(double(v), fixed_shift(s[0], s[1], sat_bits)));
#if defined(__CUDA_ARCH__)
    atomicAdd(a, static_cast<unsigned long long>(q));
#else
    *a += static_cast<unsigned long long>(q);  // wraps like the GPU's integer atomics
#endif
  }
};

/// Value a fixed-point cell adds to its target (0 when it received nothing).
DFLUID_HD inline double fixed_cell_value(unsigned long long acc, const unsigned* s, int sat_bits) {
  if (s[1] == 0) return 0.0;
  if (s[0] == kFixedNonFinite) {
    if ((acc & kFlagNan) || (acc & (kFlagPosInf | kFlagNegInf)) == (kFlagPosInf | kFlagNegInf))
      return fixed_from_bits(0x7FF8000000000000ull);  // NaN
    if (acc & kFlagPosInf) return fixed_from_bits(0x7FF0000000000000ull);
    if (acc & kFlagNegInf) return fixed_from_bits(0xFFF0000000000000ull);
    return 0.0;
  }
  return ldexp(double(static_cast<long long>(acc)), -fixed_shift(s[0], s[1], sat_bits));
}

/// Number of targets that are set (and not empty).
template <class T>
int active_targets(const std::array<View<T>, kMaxScatterTargets>& targets, int ntargets) {
  int n = 0;
  for (int t = 0; t < ntargets; ++t)
    if (targets[t].data && targets[t].size() > 0) ++n;
  return n;
}

/// CPU path, Accumulation::Deterministic: the coloured slabs described above.
template <class T, class F>
void scatter_slabs(const std::array<int, 3>& ext,
                   const std::array<View<T>, kMaxScatterTargets>& targets, int ntargets, F& f) {
  // Rows along the samples' slowest axis that has more than one of them; the
  // targets must have one entry along every slower axis, so that a range of rows
  // is a range of offsets.
  const int axis = ext[2] > 1 ? 2 : (ext[1] > 1 ? 1 : 0);
  bool rows_are_ranges = true;
  for (int t = 0; t < ntargets; ++t) {
    const View<T>& v = targets[t];
    if (!v.data) continue;
    if ((axis < 2 && v.nz > 1) || (axis < 1 && v.ny > 1)) rows_are_ranges = false;
  }
  if (!rows_are_ranges) {  // no slab windows: one serial loop (same order on every run)
    ScatterSink<T> sink;
    for (int t = 0; t < ntargets; ++t)
      sink.direct[t] = targets[t].data;
    for_each_cell_serial(ext[0], ext[1], ext[2], [&](int i, int j, int k) { f(i, j, k, sink); });
    return;
  }
  const int rows = ext[axis];
  // Slab height: even, at least 8 (windows of +-4 rows hold departure points up
  // to about 3 rows away), and at most 32 slabs per array. Depends on the size only.
  const int height = std::max(8, 2 * ((rows + 63) / 64));
  const int halo = height / 2;  // 2 halo <= height: same-colour windows are disjoint
  const int slabs = (rows + height - 1) / height;
  auto window = [&](int c, bool inside) {
    WindowSink<T> s;
    s.inside = inside;
    for (int t = 0; t < ntargets; ++t) {
      const View<T>& v = targets[t];
      if (!v.data) continue;
      const Index stride = axis == 2 ? v.sz : (axis == 1 ? v.sy : Index(1));
      s.direct[t] = v.data;
      s.lo[t] = Index(std::max(0, c * height - halo)) * stride;
      s.len[t] = Index(std::min(rows, (c + 1) * height) + halo) * stride - s.lo[t];
    }
    return s;
  };
  // Per slab, the samples that had a contribution outside the window, in sample order
  // (only they run again in the leftover pass).
  std::vector<std::vector<std::array<int, 3>>> missed(static_cast<std::size_t>(slabs));
  auto run_slab = [&](int c) {
    WindowSink<T> s = window(c, true);
    std::vector<std::array<int, 3>>& miss = missed[std::size_t(c)];
    auto one = [&](int i, int j, int k) {
      s.missed = false;
      f(i, j, k, s);
      if (s.missed) miss.push_back({i, j, k});
    };
    const int r1 = std::min(rows, (c + 1) * height);
    for (int r = c * height; r < r1; ++r) {
      if (axis == 2) {
        for (int j = 0; j < ext[1]; ++j)
          for (int i = 0; i < ext[0]; ++i)
            one(i, j, r);
      } else if (axis == 1) {
        for (int i = 0; i < ext[0]; ++i)
          one(i, r, 0);
      } else {
        one(r, 0, 0);
      }
    }
  };
#if defined(_OPENMP)
  const bool threaded = Index(ext[0]) * ext[1] * ext[2] >= kParallelCells && slabs > 2;
#pragma omp parallel if (threaded)
  {
    for (int colour = 0; colour < 2; ++colour) {
#pragma omp for schedule(static)
      for (int c = colour; c < slabs; c += 2)
        run_slab(c);
      // (the implicit barrier of omp for: colour 1 starts after colour 0 is done)
    }
  }
#else
  for (int colour = 0; colour < 2; ++colour)
    for (int c = colour; c < slabs; c += 2)
      run_slab(c);
#endif
  for (int c = 0; c < slabs; ++c) {
    if (missed[std::size_t(c)].empty()) continue;
    WindowSink<T> s = window(c, false);
    for (const std::array<int, 3>& p : missed[std::size_t(c)])
      f(p[0], p[1], p[2], s);
  }
}

/// The fixed-point scheme (GPU, or CPU with Accumulation::FixedPoint, serially).
template <class T, class F>
void scatter_fixed_point(const Context& ctx, const Exec& ex, const std::array<int, 3>& ext,
                         const std::array<View<T>, kMaxScatterTargets>& targets, int ntargets,
                         const F& f) {
  // Saturated counts (2^31 or more contributions to one cell): at most 256 per
  // sample and target (two stencils of 4^3 cubic taps, a plane of 4^2 of them
  // reading two faces each: 160, with room to spare; linear: 2 x 2^3).
  const Index samples = Index(ext[0]) * ext[1] * ext[2];
  int sat_bits = 8;
  while ((Index(1) << sat_bits) < 256 * samples)
    ++sat_bits;
  // Workspace per target from the context's pool (no allocation once warmed up),
  // zeroed: sums first, then the sizing words.
  TempBuffer ws[kMaxScatterTargets];
  FixedSizeSink<T> size_sink;
  FixedValueSink<T> value_sink;
  value_sink.sat_bits = sat_bits;
  for (int t = 0; t < ntargets; ++t) {
    const View<T>& v = targets[t];
    if (!v.data || v.size() == 0) continue;
    const std::size_t span = std::size_t(v.offset(v.nx - 1, v.ny - 1, v.nz - 1) + 1);
    const std::size_t bytes = kFixedBytesPerElement * span;
    ws[t] = TempBuffer(ctx, bytes);
    zero_bytes(ctx, ws[t].data(), bytes, ctx.memory_space());
    value_sink.acc[t] = ws[t].as<unsigned long long>();
    size_sink.size[t] = reinterpret_cast<unsigned*>(value_sink.acc[t] + span);
    value_sink.size[t] = size_sink.size[t];
  }
  if (ex.gpu) {
#if defined(__CUDACC__)
    for_each_cell(
        ex, ext, DFLUID_LAMBDA(int i, int j, int k) { f(i, j, k, size_sink); });
    for_each_cell(
        ex, ext, DFLUID_LAMBDA(int i, int j, int k) { f(i, j, k, value_sink); });
#else
    throw CudaError("internal: GPU scatter from a translation unit not compiled by nvcc");
#endif
  } else {
    // The two passes write shared cells: one thread (the integer sums would not
    // depend on the order, but plain increments on threads would race).
    count_gpu_work(ex, 2);
    for_each_cell_serial(ext[0], ext[1], ext[2],
                         [&](int i, int j, int k) { f(i, j, k, size_sink); });
    for_each_cell_serial(ext[0], ext[1], ext[2],
                         [&](int i, int j, int k) { f(i, j, k, value_sink); });
  }
  for (int t = 0; t < ntargets; ++t) {
    View<T> v = targets[t];
    if (!ws[t].data()) continue;
    const unsigned long long* a = value_sink.acc[t];
    const unsigned* s = value_sink.size[t];
    for_each_cell(
        ex, v.nx, v.ny, v.nz, DFLUID_LAMBDA(int i, int j, int k) {
          const Index off = v.offset(i, j, k);
          if (s[2 * off + 1] == 0) return;  // nothing landed here: the target is untouched
          v(i, j, k) += T(fixed_cell_value(a[off], s + 2 * off, sat_bits));
        });
  }
  // ws goes back to the pool here; work on the context is stream-ordered, so
  // the next user of a block runs after the kernels above.
}

/// Runs f(i, j, k, sink) over the box `ext`, scattering into `targets`
/// (views; targets may be the same view, contributions then add up). The
/// targets are accumulated into (+=), never overwritten.
template <class T, class F>
void scatter_cells(const Context& ctx, const Exec& ex, const std::array<int, 3>& ext,
                   const std::array<View<T>, kMaxScatterTargets>& targets, int ntargets, F f) {
  if (Index(ext[0]) * ext[1] * ext[2] == 0) return;
  if (scatter_uses_fixed_point(ctx)) {
    scatter_fixed_point<T>(ctx, ex, ext, targets, ntargets, f);
    return;
  }
  if (ctx.accumulation() == Accumulation::Atomic) {
    ScatterSink<T> sink;
    sink.atomic = 1;
    for (int t = 0; t < ntargets; ++t)
      sink.direct[t] = targets[t].data;
    if (ex.gpu) {
#if defined(__CUDACC__)
      for_each_cell(
          ex, ext, DFLUID_LAMBDA(int i, int j, int k) { f(i, j, k, sink); });
      return;
#else
      throw CudaError("internal: GPU scatter from a translation unit not compiled by nvcc");
#endif
    }
    count_gpu_work(ex, 1);  // the GPU's one atomic pass
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
  // CPU path, deterministic: count what the GPU path launches for the same call (the
  // sizing pass, the scatter pass, one conversion per target; no host wait), then run
  // the slabs.
  count_gpu_work(ex, 2 + active_targets(targets, ntargets));
  scatter_slabs<T>(ext, targets, ntargets, f);
}

}  // namespace dfluid::detail
