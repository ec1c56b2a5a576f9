// Per-level kernels of the pressure Poisson operator (see poisson.hpp): apply,
// smoothers, transfer operators, face weights. All are gathers: each thread
// writes only its own cell or face, so results never depend on thread order.
#include "pressure/poisson.hpp"

namespace dfluid::detail {

namespace {

// Each kernel is written for D = L.dim as a template argument (the stencil's axis loop
// unrolls, see poisson_stencil_f); the entry points below pick D once per launch.

template <class T, int D>
void apply_d(const Exec& ex, const PoissonLevelView<T>& L, const Field<T>& x, Field<T>& out) {
  View<const T> xv = x.view();
  View<T> ov = out.view();
  for_each_cell(
      ex, L.n[0], L.n[1], L.n[2], DFLUID_LAMBDA(int i, int j, int k) {
        T d, o;
        poisson_stencil<D>(L, xv, i, j, k, d, o);
        ov(i, j, k) = d * xv(i, j, k) - o;
      });
}

template <class T, int D>
void jacobi_precondition_d(const Exec& ex, const PoissonLevelView<T>& L, const Field<T>& r,
                           Field<T>& z) {
  View<const T> rv = r.view();
  View<T> zv = z.view();
  for_each_cell(
      ex, L.n[0], L.n[1], L.n[2], DFLUID_LAMBDA(int i, int j, int k) {
        const T d = poisson_diag<D>(L, i, j, k);
        zv(i, j, k) = d != T(0) ? rv(i, j, k) / d : T(0);
      });
}

template <class T, int D>
void rb_sweep_d(const Exec& ex, const PoissonLevelView<T>& L, const Field<T>& b, Field<T>& x,
                int color) {
  View<const T> bv = b.view();
  View<T> xv = x.view();
  const int nx = L.n[0];
  // Launched over this colour's cells only (h-th cell of the colour in each row).
  for_each_cell(
      ex, rb_half_extent(nx), L.n[1], L.n[2], DFLUID_LAMBDA(int h, int j, int k) {
        const int i = rb_cell_i(h, j, k, color);
        if (i < nx) rb_update<D>(L, bv, xv, i, j, k);
      });
}

template <class T, int D>
void rb_prolong_sweep_d(const Exec& ex, const PoissonLevelView<T>& L, const Field<T>& b,
                        const Field<T>& xc, CoarsenRatio ratio, Field<T>& x) {
  View<const T> bv = b.view();
  View<T> xv = x.view();
  const ProlongedValues<T> nb{xv.data, xc.view(), ratio.r[0] - 1, ratio.r[1] - 1, ratio.r[2] - 1};
  const int nx = L.n[0];
  for_each_cell(
      ex, rb_half_extent(nx), L.n[1], L.n[2], DFLUID_LAMBDA(int h, int j, int k) {
        const int i = rb_cell_i(h, j, k, 1);
        if (i < nx) rb_update_f<D>(L, bv, xv, nb, i, j, k);
      });
}

template <class T, int D>
void rb_first_sweep_d(const Exec& ex, const PoissonLevelView<T>& L, const Field<T>& b,
                      Field<T>& x) {
  View<const T> bv = b.view();
  View<T> xv = x.view();
  const int nx = L.n[0];
  for_each_cell(
      ex, rb_half_extent(nx), L.n[1], L.n[2], DFLUID_LAMBDA(int h, int j, int k) {
        const int i = rb_cell_i(h, j, k, 0);
        if (i < nx) rb_first_red_update<D>(L, bv, xv, i, j, k);
      });
}

template <class T, int D>
void jacobi_sweep_d(const Exec& ex, const PoissonLevelView<T>& L, const Field<T>& b,
                    const Field<T>& x, Field<T>& out, T omega) {
  View<const T> bv = b.view(), xv = x.view();
  View<T> ov = out.view();
  for_each_cell(
      ex, L.n[0], L.n[1], L.n[2], DFLUID_LAMBDA(int i, int j, int k) {
        T d, o;
        poisson_stencil<D>(L, xv, i, j, k, d, o);
        const T xc = xv(i, j, k);
        ov(i, j, k) = d != T(0) ? xc + omega * (bv(i, j, k) - (d * xc - o)) / d : T(0);
      });
}

template <class T, int D>
void restrict_residual_d(const Exec& ex, const PoissonLevelView<T>& Lf, const Field<T>& bf,
                         const Field<T>& xf, CoarsenRatio ratio, Field<T>& bc) {
  View<const T> bv = bf.view(), xv = xf.view();
  View<T> cv = bc.view();
  const auto& e = bc.extents();
  const int r0 = ratio.r[0], r1 = ratio.r[1], r2 = ratio.r[2];
  for_each_cell(
      ex, e, DFLUID_LAMBDA(int I, int J, int K) {
        restrict_residual_cell<D>(Lf, bv, xv, r0, r1, r2, cv, I, J, K);
      });
}

}  // namespace

template <class T>
void poisson_apply(const Exec& ex, const PoissonLevelView<T>& L, const Field<T>& x, Field<T>& out) {
  with_dim(L.dim, [&](auto D) { apply_d<T, D>(ex, L, x, out); });
}

template <class T>
void poisson_jacobi_precondition(const Exec& ex, const PoissonLevelView<T>& L, const Field<T>& r,
                                 Field<T>& z) {
  with_dim(L.dim, [&](auto D) { jacobi_precondition_d<T, D>(ex, L, r, z); });
}

template <class T>
void poisson_rb_sweep(const Exec& ex, const PoissonLevelView<T>& L, const Field<T>& b, Field<T>& x,
                      int color) {
  with_dim(L.dim, [&](auto D) { rb_sweep_d<T, D>(ex, L, b, x, color); });
}

template <class T>
void poisson_rb_prolong_sweep(const Exec& ex, const PoissonLevelView<T>& L, const Field<T>& b,
                              const Field<T>& xc, CoarsenRatio ratio, Field<T>& x) {
  with_dim(L.dim, [&](auto D) { rb_prolong_sweep_d<T, D>(ex, L, b, xc, ratio, x); });
}

template <class T>
void poisson_rb_first_sweep(const Exec& ex, const PoissonLevelView<T>& L, const Field<T>& b,
                            Field<T>& x) {
  with_dim(L.dim, [&](auto D) { rb_first_sweep_d<T, D>(ex, L, b, x); });
}

template <class T>
void poisson_jacobi_sweep(const Exec& ex, const PoissonLevelView<T>& L, const Field<T>& b,
                          const Field<T>& x, Field<T>& out, T omega) {
  with_dim(L.dim, [&](auto D) { jacobi_sweep_d<T, D>(ex, L, b, x, out, omega); });
}

template <class T>
void poisson_restrict_residual(const Exec& ex, const PoissonLevelView<T>& Lf, const Field<T>& bf,
                               const Field<T>& xf, CoarsenRatio ratio, Field<T>& bc) {
  with_dim(Lf.dim, [&](auto D) { restrict_residual_d<T, D>(ex, Lf, bf, xf, ratio, bc); });
}

template <class T>
void poisson_prolong_add(const Exec& ex, const Field<T>& xc, CoarsenRatio ratio, Field<T>& xf) {
  View<const T> cv = xc.view();
  View<T> fv = xf.view();
  // Ratios are 1 or 2: shifts by 0 or 1 instead of three integer divisions per cell.
  const int s0 = ratio.r[0] - 1, s1 = ratio.r[1] - 1, s2 = ratio.r[2] - 1;
  for_each_cell(
      ex, xf.extents(),
      DFLUID_LAMBDA(int i, int j, int k) { fv(i, j, k) += cv(i >> s0, j >> s1, k >> s2); });
}

template <class T>
void poisson_fine_weights(const Exec& ex, const Grid& g, const Field<std::uint8_t>* mask, int axis,
                          Field<T>& w) {
  View<const std::uint8_t> mv{};
  if (mask) mv = mask->view();
  const int n[3] = {g.n[0], g.n[1], g.n[2]};
  const bool per = g.periodic(axis);
  const bool open_lo = boundary_is_open(g.boundary[axis][0]);
  const bool open_hi = boundary_is_open(g.boundary[axis][1]);
  View<T> wv = w.view();
  for_each_cell(
      ex, w.extents(), DFLUID_LAMBDA(int i, int j, int k) {
        const int nn[3] = {n[0], n[1], n[2]};
        wv(i, j, k) = face_is_free(mv, nn, per, open_lo, open_hi, axis, i, j, k) ? T(1) : T(0);
      });
}

template <class T>
void poisson_scale_weights(const Exec& ex, const Field<T>& fraction, Field<T>& w) {
  View<const T> fv = fraction.view();
  View<T> wv = w.view();
  for_each_cell(
      ex, w.extents(), DFLUID_LAMBDA(int i, int j, int k) { wv(i, j, k) *= fv(i, j, k); });
}

template <class T>
void poisson_coarse_weights(const Exec& ex, const PoissonLevelView<T>& Lf, int axis,
                            CoarsenRatio ratio, Field<T>& wc) {
  View<const T> fw = Lf.w[axis];
  const int nf = Lf.n[axis];
  const bool per = Lf.per[axis];
  const int n0 = Lf.n[0], n1 = Lf.n[1], n2 = Lf.n[2];
  const int r0 = ratio.r[0], r1 = ratio.r[1], r2 = ratio.r[2];
  const T scale = T(1) / T(ratio.r[axis]);
  View<T> cv = wc.view();
  for_each_cell(
      ex, wc.extents(), DFLUID_LAMBDA(int I, int J, int K) {
        int lo[3] = {r0 * I, r1 * J, r2 * K};
        int hi[3] = {child_end(I, r0, n0), child_end(J, r1, n1), child_end(K, r2, n2)};
        // Along `axis`: the single fine face on the coarse face's plane. A coarse
        // high box side of an odd non-periodic axis sits on fine face nf, not r*I.
        int f = lo[axis];
        if (!per && f > nf) f = nf;
        lo[axis] = f;
        hi[axis] = f + 1;
        T s = T(0);
        for (int k = lo[2]; k < hi[2]; ++k)
          for (int j = lo[1]; j < hi[1]; ++j)
            for (int i = lo[0]; i < hi[0]; ++i)
              s += fw(i, j, k);
        cv(I, J, K) = scale * s;
      });
}

#define DFLUID_POISSON_INST(T)                                                                     \
  template void poisson_apply<T>(const Exec&, const PoissonLevelView<T>&, const Field<T>&,         \
                                 Field<T>&);                                                       \
  template void poisson_jacobi_precondition<T>(const Exec&, const PoissonLevelView<T>&,            \
                                               const Field<T>&, Field<T>&);                        \
  template void poisson_rb_sweep<T>(const Exec&, const PoissonLevelView<T>&, const Field<T>&,      \
                                    Field<T>&, int);                                               \
  template void poisson_rb_prolong_sweep<T>(const Exec&, const PoissonLevelView<T>&,               \
                                            const Field<T>&, const Field<T>&, CoarsenRatio,        \
                                            Field<T>&);                                            \
  template void poisson_rb_first_sweep<T>(const Exec&, const PoissonLevelView<T>&,                 \
                                          const Field<T>&, Field<T>&);                             \
  template void poisson_jacobi_sweep<T>(const Exec&, const PoissonLevelView<T>&, const Field<T>&,  \
                                        const Field<T>&, Field<T>&, T);                            \
  template void poisson_restrict_residual<T>(const Exec&, const PoissonLevelView<T>&,              \
                                             const Field<T>&, const Field<T>&, CoarsenRatio,       \
                                             Field<T>&);                                           \
  template void poisson_prolong_add<T>(const Exec&, const Field<T>&, CoarsenRatio, Field<T>&);     \
  template void poisson_fine_weights<T>(const Exec&, const Grid&, const Field<std::uint8_t>*, int, \
                                        Field<T>&);                                                \
  template void poisson_scale_weights<T>(const Exec&, const Field<T>&, Field<T>&);                 \
  template void poisson_coarse_weights<T>(const Exec&, const PoissonLevelView<T>&, int,            \
                                          CoarsenRatio, Field<T>&);
DFLUID_POISSON_INST(float)
DFLUID_POISSON_INST(double)
#undef DFLUID_POISSON_INST

}  // namespace dfluid::detail
