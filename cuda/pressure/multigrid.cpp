// The Poisson hierarchy: building the levels, the symmetric V-cycle used as a
// CG preconditioner, and the null space (constants on floating fluid regions).
//
// Why this multigrid: coarse cells aggregate up to 2 fine cells per axis, the
// coarse operator is the rediscretization (face weights = sum of the crossing
// fine weights / ratio), prolongation is piecewise constant and restriction its
// transpose. That keeps every level symmetric positive semi-definite for any mix
// of walls, open sides, periodic axes and obstacles, with no special cases.
// The smoother is red-black Gauss-Seidel (red, black before the coarse
// correction; black, red after), or damped Jacobi on levels where a periodic
// axis has an odd count (colours would touch across the wrap). Axes that are
// down to 2 cells stop coarsening while the others go on (semi-coarsening). Pre- and
// post-smoothers are adjoint to each other, so the V-cycle is a symmetric operator.
//
// Launches (what the GPU pays per V-cycle; the CPU path counts the same): on a red-black
// level each colour sweep launches over its own half of the cells only; the first red sweep
// from zero needs no fill (it reads no x), and the prolongation of the coarse correction
// is fused into the first post-smoothing (black) sweep, which reads the red neighbours
// plus their coarse correction (ProlongedValues, poisson.hpp): the red sweep after it
// overwrites every red cell without reading it, so x += P xc is never stored. A level
// costs 9 launches (red from zero, black, red, black, restrict; prolong+black, red, black,
// red). The small levels at the bottom (each <= kTailCells cells) run in one launch of one
// thread block (vcycle_tail), phase after phase with a barrier between them, instead of
// a dozen launches each. At 128^3 that is 3 * 9 + 1 = 28 launches per V-cycle (31 with the
// prolongation launched on its own, 83 with a launch per colour, fill and prolongation on
// every level and 16 sweeps on 2^3).
#include <algorithm>
#include <cstring>
#include <string>

#include "dfluid/field_ops.hpp"
#include "pressure/floating_regions.hpp"
#include "pressure/poisson.hpp"

namespace dfluid::detail {

namespace {

/// Ratio for coarsening g (1 on axes that cannot halve), all 1 when nothing coarsens.
CoarsenRatio coarsen_ratio(const Grid& g) {
  CoarsenRatio r;
  for (int a = 0; a < g.dim; ++a) {
    // Ceil division: with an odd count the last coarse cell holds one fine cell.
    // That works across a periodic wrap too (fine cell n-1 is in coarse cell n_c-1).
    r.r[a] = g.n[a] >= 3 ? 2 : 1;
  }
  return r;
}

bool red_black_valid(const Grid& g) {
  for (int a = 0; a < g.dim; ++a)
    if (g.periodic(a) && g.n[a] % 2 != 0) return false;
  return true;
}

template <class T>
void fill_zero(const Exec& ex, Field<T>& x) {
  View<T> v = x.view();
  for_each_cell(
      ex, x.extents(), DFLUID_LAMBDA(int i, int j, int k) { v(i, j, k) = T(0); });
}

template <class T>
void smooth(const Exec& ex, const PoissonLevel<T>& lv, const Field<T>& b, Field<T>& x, Field<T>& t,
            bool pre, int sweeps) {
  const PoissonLevelView<T> L = lv.view();
  if (lv.red_black_ok) {
    for (int s = 0; s < sweeps; ++s) {
      poisson_rb_sweep(ex, L, b, x, pre ? 0 : 1);
      poisson_rb_sweep(ex, L, b, x, pre ? 1 : 0);
    }
    return;
  }
  // Damped Jacobi is symmetric by itself; two steps per sweep end back in x.
  const T omega = lv.grid.dim == 1 ? T(2.0 / 3) : lv.grid.dim == 2 ? T(0.8) : T(6.0 / 7);
  for (int s = 0; s < sweeps; ++s) {
    poisson_jacobi_sweep(ex, L, b, x, t, omega);
    poisson_jacobi_sweep(ex, L, b, t, x, omega);
  }
}

/// Levels at the bottom of the hierarchy with at most this many cells run in one launch.
constexpr Index kTailCells = 4096;
static_assert(kTailCells < (Index(1) << 31), "the tail decodes cell indices in 32 bits");
constexpr int kMaxTailLevels = 12;
constexpr int kTailThreads = 512;

/// Sweeps on the coarsest level (tiny: at most 8 cells).
inline int coarsest_sweeps(const Grid& g) {
  const int nmax = std::max({g.n[0], g.n[1], g.n[2]});
  return std::min(32, std::max(4, nmax));
}

template <class T>
struct TailLevel {
  PoissonLevelView<T> L;
  View<const T> b;  ///< this level's right-hand side
  View<T> x;        ///< this level's correction
  View<T> bw;       ///< b, writable (the restriction into it); unused on the first tail level
  int r[3];         ///< coarsening ratio relative to the next finer level
};
template <class T>
struct TailArgs {
  int count = 0;
  int coarse_sweeps = 4;
  TailLevel<T> lv[kMaxTailLevels];
};

/// The V-cycle below (and including) the first tail level: the same per-cell updates as
/// the launched levels, each phase over the whole level split among `nth` threads, `sync`
/// between phases (a block barrier on the GPU, nothing on the CPU's single thread).
template <int D, class T, class Sync>
DFLUID_HD void vcycle_tail_body(const TailArgs<T>& a, int tid, int nth, Sync sync) {
  // Cell indices are decoded in 32-bit unsigned arithmetic: a tail level has at most
  // kTailCells cells, and a 64-bit division is a long software sequence on a GPU (and
  // slower than a 32-bit one on a CPU), paid per cell and phase.
  auto all = [&](const TailLevel<T>& t, auto op) {
    const unsigned nx = unsigned(t.L.n[0]), ny = unsigned(t.L.n[1]);
    const unsigned total = nx * ny * unsigned(t.L.n[2]);
    for (unsigned c = unsigned(tid); c < total; c += unsigned(nth)) {
      const unsigned rr = c / nx;
      op(int(c - rr * nx), int(rr % ny), int(rr / ny));
    }
    sync();
  };
  auto half = [&](const TailLevel<T>& t, int color) {
    const int nx = t.L.n[0];
    const unsigned ny = unsigned(t.L.n[1]), hx = unsigned(nx + 1) / 2;
    const unsigned total = hx * ny * unsigned(t.L.n[2]);
    for (unsigned c = unsigned(tid); c < total; c += unsigned(nth)) {
      const unsigned rr = c / hx;
      const int h = int(c - rr * hx), j = int(rr % ny), k = int(rr / ny),
                i = rb_cell_i(h, j, k, color);
      if (i < nx) rb_update<D>(t.L, t.b, t.x, i, j, k);
    }
    sync();
  };
  // The first black half-sweep after the coarse correction, with the prolongation fused in
  // (ProlongedValues, as poisson_rb_prolong_sweep).
  auto half_prolong = [&](const TailLevel<T>& t, const TailLevel<T>& coarse) {
    const ProlongedValues<T> nb{t.x.data, coarse.x, coarse.r[0] - 1, coarse.r[1] - 1,
                                coarse.r[2] - 1};
    const int nx = t.L.n[0];
    const unsigned ny = unsigned(t.L.n[1]), hx = unsigned(nx + 1) / 2;
    const unsigned total = hx * ny * unsigned(t.L.n[2]);
    for (unsigned c = unsigned(tid); c < total; c += unsigned(nth)) {
      const unsigned rr = c / hx;
      const int h = int(c - rr * hx), j = int(rr % ny), k = int(rr / ny), i = rb_cell_i(h, j, k, 1);
      if (i < nx) rb_update_f<D>(t.L, t.b, t.x, nb, i, j, k);
    }
    sync();
  };
  auto pre = [&](const TailLevel<T>& t, int sweeps) {
    const int nx = t.L.n[0];
    const unsigned ny = unsigned(t.L.n[1]), hx = unsigned(nx + 1) / 2;
    const unsigned total = hx * ny * unsigned(t.L.n[2]);
    for (unsigned c = unsigned(tid); c < total; c += unsigned(nth)) {
      const unsigned rr = c / hx;
      const int h = int(c - rr * hx), j = int(rr % ny), k = int(rr / ny), i = rb_cell_i(h, j, k, 0);
      if (i < nx) rb_first_red_update<D>(t.L, t.b, t.x, i, j, k);
    }
    sync();
    half(t, 1);
    for (int s = 1; s < sweeps; ++s) {
      half(t, 0);
      half(t, 1);
    }
  };
  const int last = a.count - 1;
  for (int l = 0; l < last; ++l) {
    const TailLevel<T>& t = a.lv[l];
    const TailLevel<T>& c = a.lv[l + 1];
    pre(t, kPreSweeps);
    const View<const T> xv = t.x;
    all(c, [&](int I, int J, int K) {
      restrict_residual_cell<D>(t.L, t.b, xv, c.r[0], c.r[1], c.r[2], c.bw, I, J, K);
    });
  }
  pre(a.lv[last], a.coarse_sweeps);
  for (int s = 0; s < a.coarse_sweeps; ++s) {
    half(a.lv[last], 1);
    half(a.lv[last], 0);
  }
  for (int l = last - 1; l >= 0; --l) {
    const TailLevel<T>& t = a.lv[l];
    half_prolong(t, a.lv[l + 1]);
    half(t, 0);
    for (int s = 1; s < kPreSweeps; ++s) {
      half(t, 1);
      half(t, 0);
    }
  }
}

#if defined(__CUDACC__)
template <int D, class T>
__global__ void __launch_bounds__(kTailThreads) vcycle_tail_kernel(TailArgs<T> a) {
  vcycle_tail_body<D>(a, int(threadIdx.x), int(blockDim.x), [] __device__() { __syncthreads(); });
}
#endif

/// One launch (GPU: one block) for the whole tail of the V-cycle.
template <class T>
void vcycle_tail(const Exec& ex, const TailArgs<T>& a) {
  count_gpu_work(ex, 1);
  if (ex.gpu) {
#if defined(__CUDACC__)
    with_dim(a.lv[0].L.dim, [&](auto D) {
      vcycle_tail_kernel<D, T><<<1, kTailThreads, 0, static_cast<cudaStream_t>(ex.stream)>>>(a);
    });
    check_launch("vcycle_tail");
    return;
#else
    throw CudaError("internal: GPU launch from a translation unit not compiled by nvcc");
#endif
  }
  with_dim(a.lv[0].L.dim, [&](auto D) { vcycle_tail_body<D>(a, 0, 1, [] {}); });
}

}  // namespace

template <class T>
PoissonLevelView<T> PoissonLevel<T>::view() const {
  PoissonLevelView<T> L;
  L.dim = grid.dim;
  for (int a = 0; a < 3; ++a) {
    L.n[a] = grid.n[a];
    L.per[a] = a < grid.dim && grid.periodic(a);
    if (a < grid.dim) L.w[a] = w[a].view();
  }
  return L;
}

template <class T>
PoissonHierarchy<T>::PoissonHierarchy(const Context& ctx, const Grid& g,
                                      const Field<std::uint8_t>* mask,
                                      const MacVelocity<T>* fractions) {
  const Exec ex = exec_of(ctx);
  levels_.emplace_back();
  {
    PoissonLevel<T>& l0 = levels_.back();
    l0.grid = g;
    for (int a = 0; a < g.dim; ++a) {
      l0.w[a] = Field<T>(ctx, g, face_location(a));
      poisson_fine_weights(ex, g, fractions ? nullptr : mask, a, l0.w[a]);
      if (fractions) poisson_scale_weights(ex, (*fractions)[a], l0.w[a]);
    }
    l0.t = Field<T>(ctx, g);
    l0.red_black_ok = red_black_valid(g);
  }
  constexpr int kMaxLevels = 24;
  while (int(levels_.size()) < kMaxLevels) {
    const Grid& gf = levels_.back().grid;
    const CoarsenRatio r = coarsen_ratio(gf);
    if (r.r[0] * r.r[1] * r.r[2] == 1 || gf.cells() <= 8) break;
    Grid gc = gf;
    for (int a = 0; a < g.dim; ++a)
      gc.n[a] = (gf.n[a] + r.r[a] - 1) / r.r[a];
    gc.dx = gf.dx * 2;  // nominal; only the weights matter to the solver
    PoissonLevel<T> lc;
    lc.grid = gc;
    lc.ratio = r;
    lc.red_black_ok = red_black_valid(gc);
    const PoissonLevelView<T> Lf = levels_.back().view();
    for (int a = 0; a < g.dim; ++a) {
      lc.w[a] = Field<T>(ctx, gc, face_location(a));
      poisson_coarse_weights(ex, Lf, a, r, lc.w[a]);
    }
    lc.x = Field<T>(ctx, gc);
    lc.b = Field<T>(ctx, gc);
    lc.t = Field<T>(ctx, gc);
    levels_.push_back(std::move(lc));
  }

  // The tail: the longest run of bottom levels that are small and red-black.
  tail_ = int(levels_.size());
  while (tail_ > 0 && levels_[tail_ - 1].grid.cells() <= kTailCells &&
         levels_[tail_ - 1].red_black_ok && int(levels_.size()) - (tail_ - 1) <= kMaxTailLevels)
    --tail_;

  // Null space: label floating regions on the host once (host wait).
  std::array<std::vector<double>, 3> wh;
  for (int a = 0; a < g.dim; ++a) {
    std::vector<T> v = levels_[0].w[a].to_vector(ctx);
    wh[a].assign(v.begin(), v.end());
  }
  std::vector<std::int32_t> labels = label_floating_regions(g, wh, region_count_);
  if (!region_count_.empty()) {
    region_ = Buffer<std::int32_t>(ctx, g.cells(), ctx.memory_space());
    copy_bytes(ctx, region_.data(), region_.space(), labels.data(), MemorySpace::Host,
               labels.size() * sizeof(std::int32_t));
    region_count_dev_ = Buffer<double>(ctx, Index(region_count_.size()), ctx.memory_space());
    copy_bytes(ctx, region_count_dev_.data(), region_count_dev_.space(), region_count_.data(),
               MemorySpace::Host, region_count_.size() * sizeof(double));
    ctx.synchronize();  // `labels` dies at the end of this scope
  }
}

template <class T>
void PoissonHierarchy<T>::apply(const Context& ctx, const Field<T>& x, Field<T>& out) const {
  poisson_apply(exec_of(ctx), levels_[0].view(), x, out);
}

template <class T>
void PoissonHierarchy<T>::precondition(const Context& ctx, Preconditioner p, const Field<T>& r,
                                       Field<T>& z) {
  switch (p) {
    case Preconditioner::Multigrid:
      vcycle(ctx, r, z);
      return;
    case Preconditioner::Jacobi:
      poisson_jacobi_precondition(exec_of(ctx), levels_[0].view(), r, z);
      return;
    case Preconditioner::None:
      copy(ctx, r, z);
      return;
  }
}

template <class T>
void PoissonHierarchy<T>::vcycle_launches(const Exec& ex, const Field<T>& r, Field<T>& z) {
  const int nl = int(levels_.size());
  auto B = [&](int l) -> const Field<T>& { return l == 0 ? r : levels_[l].b; };
  auto X = [&](int l) -> Field<T>& { return l == 0 ? z : levels_[l].x; };
  const int top = std::min(tail_, nl - 1);  // levels 0..top-1 are launched level by level
  for (int l = 0; l < top; ++l) {
    PoissonLevel<T>& lv = levels_[l];
    if (lv.red_black_ok) {
      poisson_rb_first_sweep(ex, lv.view(), B(l), X(l));
      poisson_rb_sweep(ex, lv.view(), B(l), X(l), 1);
      for (int s = 1; s < kPreSweeps; ++s) {
        poisson_rb_sweep(ex, lv.view(), B(l), X(l), 0);
        poisson_rb_sweep(ex, lv.view(), B(l), X(l), 1);
      }
    } else {
      fill_zero(ex, X(l));
      smooth(ex, lv, B(l), X(l), lv.t, true, kPreSweeps);
    }
    poisson_restrict_residual(ex, lv.view(), B(l), X(l), levels_[l + 1].ratio, levels_[l + 1].b);
  }
  if (tail_ < nl) {
    TailArgs<T> a;
    a.count = nl - tail_;
    a.coarse_sweeps = coarsest_sweeps(levels_[nl - 1].grid);
    for (int l = tail_; l < nl; ++l) {
      TailLevel<T>& t = a.lv[l - tail_];
      t.L = levels_[l].view();
      t.b = B(l).view();
      t.x = X(l).view();
      if (l > 0) t.bw = levels_[l].b.view();
      for (int d = 0; d < 3; ++d)
        t.r[d] = levels_[l].ratio.r[d];
    }
    vcycle_tail(ex, a);
  } else {
    // Coarsest level not red-black: symmetric Jacobi sweeps from zero.
    PoissonLevel<T>& lc = levels_[nl - 1];
    fill_zero(ex, X(nl - 1));
    const int sweeps = coarsest_sweeps(lc.grid);
    smooth(ex, lc, B(nl - 1), X(nl - 1), lc.t, true, sweeps);
    smooth(ex, lc, B(nl - 1), X(nl - 1), lc.t, false, sweeps);
  }
  for (int l = top - 1; l >= 0; --l) {
    PoissonLevel<T>& lv = levels_[l];
    const CoarsenRatio ratio = levels_[l + 1].ratio;
    if (lv.red_black_ok) {
      // x += P xc fused into the first black sweep (poisson_rb_prolong_sweep).
      poisson_rb_prolong_sweep(ex, lv.view(), B(l), X(l + 1), ratio, X(l));
      poisson_rb_sweep(ex, lv.view(), B(l), X(l), 0);
      for (int s = 1; s < kPreSweeps; ++s) {
        poisson_rb_sweep(ex, lv.view(), B(l), X(l), 1);
        poisson_rb_sweep(ex, lv.view(), B(l), X(l), 0);
      }
    } else {
      poisson_prolong_add(ex, X(l + 1), ratio, X(l));
      smooth(ex, lv, B(l), X(l), lv.t, false, kPreSweeps);
    }
  }
}

// CUDA graph of the V-cycle (GPU path). The launch sequence depends only on the
// hierarchy and on the r and z pointers, so it is captured once (stream capture on the
// context's stream) and replayed with one cudaGraphLaunch per V-cycle; a new (r, z)
// pair recaptures. Counters: the kernels are counted as on the CPU path, one per kernel
// in the graph (during the capture by the launches themselves; at each replay, the
// number the capture recorded); the graph launch adds no host wait. When capture is
// not possible (the legacy default stream cannot be captured) or fails, the V-cycle
// runs as plain launches from then on.
struct VcycleGraph {
#if defined(__CUDACC__)
  cudaGraphExec_t exec = nullptr;
#endif
  const void* r = nullptr;
  const void* z = nullptr;
  std::int64_t launches = 0;  // kernels in the graph
  bool failed = false;        // plain launches for this hierarchy
};

void VcycleGraphDeleter::operator()(VcycleGraph* g) const {
#if defined(__CUDACC__)
  if (g->exec) cudaGraphExecDestroy(g->exec);  // nothing to report from a destructor
#endif
  delete g;
}

template <class T>
void PoissonHierarchy<T>::vcycle(const Context& ctx, const Field<T>& r, Field<T>& z) {
  const Exec ex = exec_of(ctx);
#if defined(__CUDACC__)
  if (ex.gpu && !(graph_ && graph_->failed)) {
    cudaStream_t st = static_cast<cudaStream_t>(ex.stream);
    if (!graph_ || graph_->r != r.data() || graph_->z != z.data()) {
      graph_.reset(new VcycleGraph);
      graph_->r = r.data();
      graph_->z = z.data();
      graph_->failed = true;
      if (st == nullptr) {  // the legacy default stream cannot be captured
        vcycle_launches(ex, r, z);
        return;
      }
      if (cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        cudaGetLastError();  // clear it: the V-cycle runs as plain launches
        vcycle_launches(ex, r, z);
        return;
      }
      const std::int64_t before = ctx.counters().launches;
      bool recorded = true;
      try {
        vcycle_launches(ex, r, z);
      } catch (const CudaError&) {
        recorded = false;
      }
      graph_->launches = ctx.counters().launches - before;
      cudaGraph_t graph = nullptr;
      const cudaError_t end = cudaStreamEndCapture(st, &graph);
      cudaError_t inst = cudaErrorUnknown;
      if (recorded && end == cudaSuccess && graph != nullptr)
        inst = cudaGraphInstantiate(&graph_->exec, graph, 0);
      if (graph != nullptr && cudaGraphDestroy(graph) != cudaSuccess) inst = cudaErrorUnknown;
      if (inst != cudaSuccess) {
        cudaGetLastError();
        if (graph_->exec) cudaGraphExecDestroy(graph_->exec);
        graph_->exec = nullptr;
        count_events(ex.state, -graph_->launches, 0, 0);  // recorded, never run
        vcycle_launches(ex, r, z);
        return;
      }
      graph_->failed = false;
      // The kernels were counted while they were recorded; this launch runs them.
      const cudaError_t e = cudaGraphLaunch(graph_->exec, st);
      if (e != cudaSuccess)
        throw CudaError(std::string("CUDA error launching the V-cycle graph: ") +
                        cudaGetErrorString(e));
      return;
    }
    const cudaError_t e = cudaGraphLaunch(graph_->exec, st);
    if (e != cudaSuccess)
      throw CudaError(std::string("CUDA error launching the V-cycle graph: ") +
                      cudaGetErrorString(e));
    count_gpu_work(ex, graph_->launches);
    return;
  }
#endif
  vcycle_launches(ex, r, z);
}

template <class T>
View<const std::int32_t> PoissonHierarchy<T>::region_labels() const {
  if (region_count_.empty()) return {};
  const Grid& g = levels_[0].grid;
  return {region_.data(), g.n[0], g.n[1], g.n[2], g.n[0], Index(g.n[0]) * g.n[1]};
}

template struct PoissonLevel<float>;
template struct PoissonLevel<double>;
template class PoissonHierarchy<float>;
template class PoissonHierarchy<double>;

}  // namespace dfluid::detail
