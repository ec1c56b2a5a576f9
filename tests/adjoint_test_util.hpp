// Helpers shared by the operator adjoint tests: reproducible random fields and
// dot products over whole vector fields.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <random>
#include <vector>

#include "dfluid/dfluid.hpp"

namespace dfluid::testing {

/// Uniform values in [-1, 1) from std::mt19937(seed), x fastest.
template <class T>
void fill_random(const Context& ctx, Field<T>& f, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> d(-1.0, 1.0);
  std::vector<T> v(static_cast<std::size_t>(f.size()));
  for (auto& x : v)
    x = T(d(rng));
  f.assign(ctx, v);
}

/// Component a of a MacVelocity or CellVector gets seed * 7 + a.
template <class V>
void fill_random_vec(const Context& ctx, V& u, unsigned seed) {
  for (int a = 0; a < u.dim(); ++a)
    fill_random(ctx, u[a], seed * 7 + unsigned(a));
}

template <class T>
void fill_random(const Context& ctx, MacVelocity<T>& u, unsigned seed) {
  fill_random_vec(ctx, u, seed);
}
template <class T>
void fill_random(const Context& ctx, CellVector<T>& u, unsigned seed) {
  fill_random_vec(ctx, u, seed);
}

inline double dotv(const Context& ctx, const Field<double>& a, const Field<double>& b) {
  return dot(ctx, a, b);
}
/// Sum of the component dot products of two MacVelocity or CellVector fields.
template <class V>
double dotv(const Context& ctx, const V& a, const V& b) {
  double s = 0;
  for (int c = 0; c < a.dim(); ++c)
    s += dot(ctx, a[c], b[c]);
  return s;
}

/// <J x, y> = <x, J^T y> for random MAC velocities x, y (seeds 11, 23) to tol (relative):
/// fwd(x, Jx) and adj(y, J^T y) write into their second argument. The product must not be
/// tiny (a map that drops everything would pass otherwise).
template <class Fwd, class Adj>
void expect_mac_transpose(const Context& ctx, const Grid& g, Fwd fwd, Adj adj, double tol) {
  MacVelocity<double> x(ctx, g), y(ctx, g), jx(ctx, g), jty(ctx, g);
  fill_random(ctx, x, 11);
  fill_random(ctx, y, 23);
  fwd(x, jx);
  adj(y, jty);
  const double lhs = dotv(ctx, jx, y), rhs = dotv(ctx, x, jty);
  EXPECT_LE(std::abs(lhs - rhs), tol * std::abs(lhs)) << lhs << " vs " << rhs;
  EXPECT_GT(std::abs(lhs), 1e-3);
}

/// `g` with boundary kinds b[axis] = {low, high} on each active axis.
inline Grid with_boundary(Grid g, const std::vector<std::array<BoundaryKind, 2>>& b) {
  for (int a = 0; a < g.dim; ++a)
    g.set_boundary(a, b[a][0], b[a][1]);
  return g;
}

constexpr auto W = BoundaryKind::Wall;
constexpr auto O = BoundaryKind::Open;
constexpr auto P = BoundaryKind::Periodic;

/// Solver options for transpose and finite-difference checks in double: a relative residual
/// of 1e-14 (no absolute floor), so the solves' error stays below the tests' tolerances.
inline SolverOptions tight_solver() {
  SolverOptions o;
  o.rel_tol = 1e-14;
  o.abs_tol = 0;
  o.max_iterations = 4000;
  return o;
}

}  // namespace dfluid::testing
