// The force of the fluid on a Simulation's obstacles (dfluid/obstacle.hpp): the coefficients,
// built on first use (per body for ObstacleForceLoss::body), the force itself (host
// reductions), and the adjoints a Rollout's force losses use.
#include <array>
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "dfluid/face_fractions.hpp"
#include "dfluid/field_ops.hpp"
#include "dfluid/obstacle.hpp"
#include "dfluid/simulation.hpp"

namespace dfluid {

template <class T>
const ObstacleForceCoefficients<T>& Simulation<T>::obstacle_force_coefficients() const {
  return body_force_coefficients(nullptr);
}

template <class T>
const ObstacleForceCoefficients<T>& Simulation<T>::body_force_coefficients(
    const ObstacleMask* body) const {
  const bool fractions = solver_.face_fractions();
  if (!fractions && !obstacles_)
    throw InvalidArgument(
        "Simulation: the force on obstacles needs obstacles; pass the ObstacleMask to the "
        "Simulation's constructor");
  std::shared_ptr<ObstacleForceCoefficients<T>>* slot = &force_coef_;
  if (body) {
    slot = nullptr;
    for (auto& e : body_coef_)
      if (e.first == body) slot = &e.second;
    if (!slot) {
      check::on_grid(*body, "ObstacleForceLoss::body", grid_, Location::Cell);
      check::accessible(ctx_, *body, "ObstacleForceLoss::body");
      body_coef_.emplace_back(body, nullptr);
      slot = &body_coef_.back().second;
    }
  }
  // The viscous force is the diffusion stencil's: none without diffusion of the velocity.
  const bool no_slip = obstacle_wall_.kind == ObstacleWallKind::NoSlip;
  const double nu = config_.diffusion == DiffusionMode::None ? 0.0 : config_.viscosity;
  if (!*slot) {
    auto c = std::make_shared<ObstacleForceCoefficients<T>>();
    if (fractions)  // pressure on the cut cells; a no-slip body's ghost-fluid shear
      face_fraction_force_coefficients(ctx_, fractions_, no_slip ? &face_distance_ : nullptr, body,
                                       *c);
    else
      dfluid::obstacle_body_force_coefficients(ctx_, *obstacles_, body, no_slip, nu, *c);
    *slot = c;
  }
  ObstacleForceCoefficients<T>& c = **slot;
  // The viscosity from the current config (the coefficient fields do not depend on it), and
  // the force's derivative with respect to it (none without diffusion of the velocity).
  c.shear_scale_per_nu =
      no_slip && config_.diffusion != DiffusionMode::None ? std::pow(grid_.dx, grid_.dim - 2) : 0.0;
  c.shear_scale = no_slip ? nu * c.shear_scale_per_nu : 0.0;
  return c;
}

template <class T>
std::array<double, 3> Simulation<T>::obstacle_force(const SmokeState<T>& state) const {
  return obstacle_force_on(state, nullptr);
}

template <class T>
std::array<double, 3> Simulation<T>::obstacle_force_on(const SmokeState<T>& state,
                                                       const ObstacleMask* body) const {
  const ObstacleForceCoefficients<T>& c = body_force_coefficients(body);
  check::on_grid(state.velocity[0], "obstacle_force: state.velocity", grid_, Location::FaceX);
  check::on_grid(state.pressure, "obstacle_force: state.pressure", grid_, Location::Cell);
  std::array<double, 3> f{0, 0, 0};
  for (int a = 0; a < grid_.dim; ++a) {
    f[a] = c.pressure_scale * dot(ctx_, c.pressure[a], state.pressure);  // host waits
    if (c.shear_scale != 0) {
      f[a] += c.shear_scale * dot(ctx_, c.shear[a], state.velocity[a]);
      if (obstacle_wall_.wall_velocity)
        f[a] -= c.shear_scale * dot(ctx_, c.shear_wall[a], (*obstacle_wall_.wall_velocity)[a]);
    }
  }
  return f;
}

template <class T>
void Simulation<T>::obstacle_force_adjoint(const std::array<double, 3>& direction, double weight,
                                           SmokeGradient<T>& grad) const {
  obstacle_force_adjoint_on(direction, weight, grad, nullptr);
}

template <class T>
void Simulation<T>::obstacle_force_adjoint_on(const std::array<double, 3>& direction, double weight,
                                              SmokeGradient<T>& grad,
                                              const ObstacleMask* body) const {
  const ObstacleForceCoefficients<T>& c = body_force_coefficients(body);
  check::on_grid(grad.velocity[0], "obstacle_force_adjoint: grad.velocity", grid_, Location::FaceX);
  if (grad.pressure.empty()) {
    grad.pressure = Field<T>(ctx_, grid_, Location::Cell);
    fill(ctx_, grad.pressure, T(0));
  }
  check::on_grid(grad.pressure, "obstacle_force_adjoint: grad.pressure", grid_, Location::Cell);
  for (int a = 0; a < grid_.dim; ++a) {
    if (direction[a] == 0) continue;
    axpy(ctx_, T(weight * direction[a] * c.pressure_scale), c.pressure[a], grad.pressure);
    if (c.shear_scale != 0)
      axpy(ctx_, T(weight * direction[a] * c.shear_scale), c.shear[a], grad.velocity[a]);
  }
}

template <class T>
void Simulation<T>::obstacle_force_wall_gradient(const std::array<double, 3>& direction,
                                                 double weight, MacVelocity<T>& grad_wall) const {
  obstacle_force_wall_gradient_on(direction, weight, grad_wall, nullptr);
}

template <class T>
void Simulation<T>::obstacle_force_wall_gradient_on(const std::array<double, 3>& direction,
                                                    double weight, MacVelocity<T>& grad_wall,
                                                    const ObstacleMask* body) const {
  const ObstacleForceCoefficients<T>& c = body_force_coefficients(body);
  for (int a = 0; a < grid_.dim; ++a) {
    check::on_grid(grad_wall[a], "obstacle_force_wall_gradient: grad_wall", grid_,
                   face_location(a));
    if (direction[a] != 0 && c.shear_scale != 0)
      axpy(ctx_, T(-weight * direction[a] * c.shear_scale), c.shear_wall[a], grad_wall[a]);
  }
}

template const ObstacleForceCoefficients<float>& Simulation<float>::obstacle_force_coefficients()
    const;
template const ObstacleForceCoefficients<float>& Simulation<float>::body_force_coefficients(
    const ObstacleMask*) const;
template std::array<double, 3> Simulation<float>::obstacle_force(const SmokeState<float>&) const;
template std::array<double, 3> Simulation<float>::obstacle_force_on(const SmokeState<float>&,
                                                                    const ObstacleMask*) const;
template void Simulation<float>::obstacle_force_adjoint(const std::array<double, 3>&, double,
                                                        SmokeGradient<float>&) const;
template void Simulation<float>::obstacle_force_adjoint_on(const std::array<double, 3>&, double,
                                                           SmokeGradient<float>&,
                                                           const ObstacleMask*) const;
template void Simulation<float>::obstacle_force_wall_gradient(const std::array<double, 3>&, double,
                                                              MacVelocity<float>&) const;
template void Simulation<float>::obstacle_force_wall_gradient_on(const std::array<double, 3>&,
                                                                 double, MacVelocity<float>&,
                                                                 const ObstacleMask*) const;
template const ObstacleForceCoefficients<double>& Simulation<double>::obstacle_force_coefficients()
    const;
template const ObstacleForceCoefficients<double>& Simulation<double>::body_force_coefficients(
    const ObstacleMask*) const;
template std::array<double, 3> Simulation<double>::obstacle_force(const SmokeState<double>&) const;
template std::array<double, 3> Simulation<double>::obstacle_force_on(const SmokeState<double>&,
                                                                     const ObstacleMask*) const;
template void Simulation<double>::obstacle_force_adjoint(const std::array<double, 3>&, double,
                                                         SmokeGradient<double>&) const;
template void Simulation<double>::obstacle_force_adjoint_on(const std::array<double, 3>&, double,
                                                            SmokeGradient<double>&,
                                                            const ObstacleMask*) const;
template void Simulation<double>::obstacle_force_wall_gradient(const std::array<double, 3>&, double,
                                                               MacVelocity<double>&) const;
template void Simulation<double>::obstacle_force_wall_gradient_on(const std::array<double, 3>&,
                                                                  double, MacVelocity<double>&,
                                                                  const ObstacleMask*) const;

}  // namespace dfluid
