// The physics of dfluid-plume: the published smoke-plume problem (Physics-Based Deep Learning
// book, Thuerey et al. 2021, "Differentiable fluid simulations"):
// 32 x 40 cells of size 1 in (0,32) x (0,40), closed walls; a batch of 4 inflows, spheres of
// radius 3 at (12,4), (13,6), (14,5), (16,5) adding 1/3 smoke per step; the 4th produces the
// reference. Each step (dt = 1): MacCormack advection of the smoke, inflow, buoyancy
// smoke * (0, 1) at the y faces, semi-Lagrangian self-advection of the velocity, pressure
// projection (CG, tolerance 1e-3). The buoyancy uses the smoke after the inflow and is added
// after the self-advection (the original computes it before and adds it after), so the step
// order is
//   AdvectScalars, AdvectVelocity, Forces (inflow source, then buoyancy), Project.
// Loss = 1/2 sum (smoke_N - reference_N)^2 per entry; its gradient with respect to the initial
// velocity comes from Simulation + Rollout.
//
// Two details of the original (PhiFlow 2.0/2.1) decide the iteration-0 loss, each worth a few
// percent; both are options here, with the published behaviour as the default:
//  * --inflow-edge hard: a cell gets inflow when its centre (i + 1/2, j + 1/2) lies inside the
//    sphere (PhiFlow 2.0/2.1 rasterize a geometry with a hard mask at cell centres; later
//    versions estimate the fraction of each cell inside: --inflow-edge soft).
//  * --wall-tangential zero: the velocity's zero extrapolation at the walls, which advection
//    sees as a velocity component tangential to a wall going to 0 half a cell beyond the last
//    cell centre. dfluid's walls extrapolate tangential components with zero gradient
//    (--wall-tangential zero-gradient); to get the zero ghost the 32 x 40 domain is embedded in
//    a grid one cell larger on every side whose outer ring is solid (faces touching solid cells
//    are held at 0, so the ring is exactly the zero ghost layer). The ring holds no smoke (no
//    velocity reaches into it and the inflow skips solid cells), and the optimization only
//    changes faces between two fluid cells.
//    --wall-tangential no-slip poses the same box with no-slip walls (BoundaryKind::NoSlip)
//    and no ring: the tangential velocity is 0 on the wall itself (ghost value -u), half a
//    cell closer than the original's zero; iteration 0 comes out 2% above the published loss.
//
// The 4th batch entry's loss is identically 0 (its own smoke is the target, with the gradient
// stopped in the original) and so is its gradient: its velocity stays 0 and its rollout is not
// run during the optimization.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "dfluid/dfluid.hpp"

namespace dfluid::plume {

inline constexpr int kNx = 32, kNy = 40;
inline constexpr int kBatch = 4;
inline constexpr int kReferenceEntry = 3;  // (16, 5)
inline constexpr double kInflowCentre[kBatch][2] = {{12, 4}, {13, 6}, {14, 5}, {16, 5}};
inline constexpr double kInflowRadius = 3;
inline constexpr double kInflowPerStep = 1.0 / 3;

/// The options that define the problem (a state file must match them).
struct PlumeSettings {
  int steps = 20;
  double tolerance = 1e-3;
  std::string inflow_edge = "hard";      ///< hard | soft
  std::string wall_tangential = "zero";  ///< zero | zero-gradient | no-slip
};

/// The 32 x 40 domain inside the simulation grid, which has `frame` extra cells on every side
/// (1 for --wall-tangential zero, else 0). Positions stay those of the original: cell (i, j)
/// of the domain is centred at (i + 1/2, j + 1/2).
struct Layout {
  int frame = 0;
  Grid grid;    ///< simulation grid
  Grid domain;  ///< the 32 x 40 domain (walls), for outputs

  Layout(int f, BoundaryKind walls);
  /// The layout --wall-tangential asks for.
  static Layout of(const PlumeSettings& s) {
    return Layout(s.wall_tangential == "zero" ? 1 : 0,
                  s.wall_tangential == "no-slip" ? BoundaryKind::NoSlip : BoundaryKind::Wall);
  }
  /// True for the solid ring cells.
  bool solid(int i, int j) const {
    return i < frame || j < frame || i >= grid.n[0] - frame || j >= grid.n[1] - frame;
  }
  /// Values of the domain's array at `loc` taken from the simulation grid's array `v`.
  template <class T>
  std::vector<T> crop(const std::vector<T>& v, Location loc) const {
    const auto big = extents_of(grid, loc), small = extents_of(domain, loc);
    std::vector<T> out(std::size_t(small[0]) * small[1]);
    for (int j = 0; j < small[1]; ++j)
      for (int i = 0; i < small[0]; ++i)
        out[std::size_t(j) * small[0] + i] = v[std::size_t(j + frame) * big[0] + i + frame];
    return out;
  }
};

/// sum over the components of dot(a[d], b[d]).
template <class T>
double dot_velocity(const Context& ctx, const MacVelocity<T>& a, const MacVelocity<T>& b) {
  double s = 0;
  for (int d = 0; d < a.dim(); ++d)
    s += dot(ctx, a[d], b[d]);
  return s;
}

/// The batch of plumes: grid, solid ring, inflows, reference, and the rollout machinery.
template <class T>
class Plume {
 public:
  Plume(const Context& ctx, const PlumeSettings& s);

  const Layout& layout() const { return layout_; }
  const Field<T>& reference() const { return reference_; }
  const ObstacleMask* obstacles() const { return layout_.frame > 0 ? &solid_ : nullptr; }

  /// Loss of entry b from `initial` (smoke 0) and, into `grad`, its gradient with respect to
  /// the initial velocity restricted to the faces the optimization may change.
  double loss_and_gradient(int b, const SmokeState<T>& initial, MacVelocity<T>& grad);

  /// Smoke after the rollout of entry b from `initial` (forward only).
  Field<T> final_smoke(const SmokeState<T>& initial, int b);

 private:
  Context ctx_;
  Layout layout_;
  int steps_;
  ObstacleMask solid_;
  Simulation<T> sim_;
  Rollout<T> rollout_;
  RolloutResult<T> result_;  // reused by every evaluation: a warm gradient allocates nothing
  std::vector<Field<T>> inflow_;
  std::vector<std::vector<StepControls<T>>> controls_;
  Field<T> reference_;
  RolloutLosses<T> losses_;
  RolloutOptions options_;
};

extern template class Plume<float>;
extern template class Plume<double>;

}  // namespace dfluid::plume
