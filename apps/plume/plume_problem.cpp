#include "plume/plume_problem.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

namespace dfluid::plume {
namespace {

/// Inflow per step of entry b: kInflowPerStep times the sphere's mask. hard: 1 where the cell
/// centre lies inside the sphere; soft: the fraction-inside estimate clip(1/2 - d / r_cell,
/// 0, 1) with d the signed distance of the centre to the sphere surface and r_cell = sqrt(2)/2
/// the cell's bounding radius.
std::vector<double> inflow_values(const Layout& l, int b, bool soft) {
  const Grid& g = l.grid;
  std::vector<double> v(std::size_t(g.cells()), 0.0);
  for (int j = 0; j < g.n[1]; ++j)
    for (int i = 0; i < g.n[0]; ++i) {
      if (l.solid(i, j)) continue;
      const double x = g.origin[0] + (i + 0.5) * g.dx, y = g.origin[1] + (j + 0.5) * g.dx;
      const double d = std::hypot(x - kInflowCentre[b][0], y - kInflowCentre[b][1]);
      const double inside = soft ? std::clamp(0.5 - (d - kInflowRadius) / std::sqrt(0.5), 0.0, 1.0)
                                 : (d <= kInflowRadius ? 1.0 : 0.0);
      v[std::size_t(j) * g.n[0] + i] = kInflowPerStep * inside;
    }
  return v;
}

StepConfig plume_step_config(double tolerance) {
  StepConfig c;
  c.dt = 1.0;
  c.scalar_advection.scheme = AdvectionScheme::MacCormack;  // with the min/max clamp
  c.scalar_advection.boundary = ScalarBoundary::zero_gradient();
  c.velocity_advection.scheme = AdvectionScheme::SemiLagrangian;
  c.buoyancy = 1.0;  // smoke * (0, 1)
  c.buoyancy_scalar = 0;
  c.up_axis = 1;
  c.diffusion = DiffusionMode::None;
  c.pressure.rel_tol = tolerance;
  c.pressure.warm_start = false;  // the original solves from 0 every step
  c.order = {StepPart::AdvectScalars, StepPart::AdvectVelocity, StepPart::Forces,
             StepPart::Project};
  return c;
}

ObstacleMask solid_ring(const Context& ctx, const Layout& l) {
  ObstacleMask m(ctx, l.grid);
  std::vector<std::uint8_t> v(std::size_t(l.grid.cells()), 0);
  for (int j = 0; j < l.grid.n[1]; ++j)
    for (int i = 0; i < l.grid.n[0]; ++i)
      v[std::size_t(j) * l.grid.n[0] + i] = l.solid(i, j) ? 1 : 0;
  m.assign(ctx, v);
  return m;
}

}  // namespace

Layout::Layout(int f, BoundaryKind walls) : frame(f) {
  grid = Grid::make_2d(kNx + 2 * f, kNy + 2 * f, 1.0, {-double(f), -double(f)});
  grid.set_boundary(walls);
  domain = Grid::make_2d(kNx, kNy, 1.0);
  domain.set_boundary(BoundaryKind::Wall);
}

template <class T>
Plume<T>::Plume(const Context& ctx, const PlumeSettings& s)
    : ctx_(ctx),
      layout_(Layout::of(s)),
      steps_(s.steps),
      solid_(solid_ring(ctx, layout_)),  // before sim_: the pressure solver reads it once
      sim_(ctx, layout_.grid, plume_step_config(s.tolerance), obstacles()),
      rollout_(sim_),
      reference_(ctx, layout_.grid) {
  for (int b = 0; b < kBatch; ++b) {
    inflow_.emplace_back(ctx, layout_.grid);
    const auto v = inflow_values(layout_, b, s.inflow_edge == "soft");
    inflow_.back().assign(ctx, std::vector<T>(v.begin(), v.end()));
  }
  for (int b = 0; b < kBatch; ++b)
    controls_.emplace_back(steps_, StepControls<T>{nullptr, {&inflow_[b]}});
  // The reference: the 4th entry from rest (its velocity never changes, see the header).
  SmokeState<T> rest(ctx, layout_.grid);
  copy(ctx, final_smoke(rest, kReferenceEntry), reference_);
  ScalarKeyframe<T> kf;
  kf.name = "smoke";
  kf.step = steps_;
  kf.scalar = 0;
  kf.target = &reference_;
  losses_.keyframes.push_back(kf);
  options_.force_gradients = false;
  options_.source_gradients = false;
  options_.buoyancy_gradient = false;
}

template <class T>
double Plume<T>::loss_and_gradient(int b, const SmokeState<T>& initial, MacVelocity<T>& grad) {
  rollout_.run(initial, steps_, controls_[b], losses_, options_, result_);
  const RolloutResult<T>& r = result_;
  for (int a = 0; a < grad.dim(); ++a)
    copy(ctx_, r.grad_initial.velocity[a], grad[a]);
  zero_fixed_faces(ctx_, grad, obstacles());
  return r.loss;
}

template <class T>
Field<T> Plume<T>::final_smoke(const SmokeState<T>& initial, int b) {
  SmokeState<T> s(ctx_, layout_.grid);
  copy(ctx_, initial.velocity, s.velocity);
  for (int k = 0; k < steps_; ++k)
    sim_.step(s, controls_[b][k]);
  return std::move(s.scalars[0]);
}

template class Plume<float>;
template class Plume<double>;

}  // namespace dfluid::plume
