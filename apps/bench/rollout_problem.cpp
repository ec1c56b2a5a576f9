#include "rollout_problem.hpp"

#include <cmath>
#include <functional>

namespace dfluid::bench {

namespace {

constexpr double kPi = 3.14159265358979323846;

/// A field on g at `loc` with values fn(x, y, z), positions in [0, 1] box units (cell
/// centres, face positions on the face axis; z = 0.5 in 2D).
template <class T>
Field<T> make_field(const Context& ctx, const Grid& g, Location loc,
                    const std::function<double(double, double, double)>& fn) {
  Field<T> f(ctx, g, loc);
  const auto e = f.extents();
  auto pos = [&](int axis, int i) {
    if (axis >= g.dim) return 0.5;
    const bool on_face = loc != Location::Cell && face_location(axis) == loc;
    return (i + (on_face ? 0.0 : 0.5)) / g.n[axis];
  };
  std::vector<T> v(static_cast<std::size_t>(f.size()));
  for (int k = 0; k < e[2]; ++k)
    for (int j = 0; j < e[1]; ++j)
      for (int i = 0; i < e[0]; ++i)
        v[(std::size_t(k) * e[1] + j) * e[0] + i] = T(fn(pos(0, i), pos(1, j), pos(2, k)));
  f.assign(ctx, v);
  return f;
}

/// A ball of height `value` with soft edges (a tanh profile about 1.5 cells wide).
std::function<double(double, double, double)> ball(const Grid& g, double cx, double cy,
                                                   double radius, double value) {
  const double edge = 1.5 / g.n[0];
  const bool three_d = g.dim == 3;
  return [=](double x, double y, double z) {
    const double dz = three_d ? z - 0.5 : 0.0;
    const double r = std::sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy) + dz * dz);
    return value * 0.5 * (1.0 - std::tanh((r - radius) / edge));
  };
}

}  // namespace

template <class T>
RolloutProblem<T>::RolloutProblem(const Context& ctx, const Grid& g, int n)
    : grid(g), steps(n), initial(ctx, g), force(ctx, g) {
  initial.scalars[0] = make_field<T>(ctx, g, Location::Cell, ball(g, 0.5, 0.3, 0.15, 1.0));
  inflow = make_field<T>(ctx, g, Location::Cell, ball(g, 0.5, 0.1, 0.08, 0.05));
  target = make_field<T>(ctx, g, Location::Cell, ball(g, 0.5, 0.6, 0.2, 0.8));
  // Horizontal shear that changes with height: f_x = a sin(2 pi y), and in 3D
  // f_z = a cos(2 pi y); no vertical force.
  const double a = 0.01;
  force[0] = make_field<T>(ctx, g, face_location(0),
                           [a](double, double y, double) { return a * std::sin(2 * kPi * y); });
  if (g.dim == 3) {
    force[2] = make_field<T>(ctx, g, face_location(2),
                             [a](double, double y, double) { return a * std::cos(2 * kPi * y); });
  }
  controls.resize(static_cast<std::size_t>(n));
  for (auto& c : controls) {
    c.force = &force;
    c.sources = {&inflow};
  }
  ScalarKeyframe<T> kf;
  kf.name = "keyframe";
  kf.step = n;
  kf.target = &target;
  losses.keyframes.push_back(kf);
  losses.force_effort = 1e-3;
}

template struct RolloutProblem<float>;
template struct RolloutProblem<double>;

}  // namespace dfluid::bench
