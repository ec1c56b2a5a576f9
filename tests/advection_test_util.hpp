// Helpers shared by the advection adjoint and tangent tests (double precision,
// CPU path): the arrays of a scalar / MAC / cell-vector field, reproducible
// random values, dot products over whole fields, and the small test grids.
#pragma once

#include <string>
#include <vector>

#include "dfluid/advection.hpp"
#include "dfluid/dfluid.hpp"

namespace dfluid::testing::advection {

/// The interpolations this build runs on the GPU: cubic only where its device code was
/// compiled (-DDFLUID_CUDA_CUBIC=ON); elsewhere a CUDA context refuses it.
inline std::vector<Interpolation> gpu_interpolations() {
  if (DFLUID_WITH_CUDA_CUBIC) return {Interpolation::Linear, Interpolation::Cubic};
  return {Interpolation::Linear};
}

using F = Field<double>;

inline std::vector<F*> parts(F& f) {
  return {&f};
}
inline std::vector<F*> parts(MacVelocity<double>& m) {
  std::vector<F*> p;
  for (int a = 0; a < m.dim(); ++a)
    p.push_back(&m[a]);
  return p;
}
inline std::vector<F*> parts(CellVector<double>& m) {
  std::vector<F*> p;
  for (int a = 0; a < m.dim(); ++a)
    p.push_back(&m[a]);
  return p;
}

template <class Q>
Q make(const Context& ctx, const Grid& g);
template <>
inline F make<F>(const Context& ctx, const Grid& g) {
  return F(ctx, g, Location::Cell);
}
template <>
inline MacVelocity<double> make<MacVelocity<double>>(const Context& ctx, const Grid& g) {
  return MacVelocity<double>(ctx, g);
}
template <>
inline CellVector<double> make<CellVector<double>>(const Context& ctx, const Grid& g) {
  return CellVector<double>(ctx, g);
}

/// Deterministic pseudo-random values in [lo, hi).
template <class Q>
void randomize(const Context& ctx, Q& q, unsigned seed, double lo, double hi) {
  unsigned s = seed * 2654435761u + 12345u;
  for (F* f : parts(q)) {
    std::vector<double> v(std::size_t(f->size()));
    for (auto& x : v) {
      s = s * 1664525u + 1013904223u;
      x = lo + (hi - lo) * double(s >> 8) / double(1u << 24);
    }
    f->assign(ctx, v);
  }
}

template <class Q>
double dotq(const Context& ctx, Q& a, Q& b) {
  auto pa = parts(a), pb = parts(b);
  double s = 0;
  for (std::size_t i = 0; i < pa.size(); ++i)
    s += dot(ctx, *pa[i], *pb[i]);
  return s;
}

/// y = x + a * d
template <class Q>
void set_axpy(const Context& ctx, Q& x, double a, Q& d, Q& y) {
  auto px = parts(x), pd = parts(d), py = parts(y);
  for (std::size_t i = 0; i < px.size(); ++i) {
    copy(ctx, *px[i], *py[i]);
    axpy(ctx, a, *pd[i], *py[i]);
  }
}

template <class Q>
std::vector<double> flat(const Context& ctx, Q& q) {
  std::vector<double> v;
  for (F* f : parts(q)) {
    auto w = f->to_vector(ctx);
    v.insert(v.end(), w.begin(), w.end());
  }
  return v;
}

inline Grid make_grid(int dim, BoundaryKind b) {
  const int n[3] = {dim == 1 ? 12 : (dim == 2 ? 9 : 6), dim == 2 ? 8 : 6, 5};
  const double dx = 0.1;
  Grid g = dim == 1
               ? Grid::make_1d(n[0], dx)
               : (dim == 2 ? Grid::make_2d(n[0], n[1], dx) : Grid::make_3d(n[0], n[1], n[2], dx));
  g.set_boundary(b);
  return g;
}

constexpr double kDt = 0.13;  // with |u| < 1 and dx = 0.1: up to 1.3 cells per step

}  // namespace dfluid::testing::advection
