// The physics of dfluid-burgers: the published 1D Burgers problem (Physics-Based Deep Learning
// book, Thuerey et al. 2021, "Burgers optimization with a differentiable physics gradient"):
//   N = 128 cells on [-1, 1], periodic, dx = 2/N; dt = 1/32; nu = 0.01 / (N pi);
//   one step = explicit diffusion, then semi-Lagrangian self-advection (linear interpolation);
//   loss = 1/2 sum_i (u16_i - ref_i)^2 * 2/N, ref = the state after 16 steps from -sin(pi x).
// The gradient is the hand-written backward pass over the 16 stored states: per step, last to
// first, the self-advection adjoint and the explicit-diffusion adjoint (both from the library).
#pragma once

#include <string>
#include <vector>

#include "dfluid/dfluid.hpp"

namespace dfluid::burgers {

inline constexpr double kPi = 3.14159265358979323846;
inline constexpr int kCells = 128;
inline constexpr int kTargetSteps = 16;      // the reference is the state at t = 0.5
inline constexpr int kTrajectorySteps = 32;  // t = 1: the span of the trajectory error
inline constexpr double kDt = 1.0 / 32;
inline constexpr double kViscosity = 0.01 / (kCells * kPi);

/// The 128 reference values (one per line, '#' comments). Throws InvalidArgument naming the
/// file and the option when it is missing or malformed.
std::vector<double> read_reference(const std::string& path);

/// Centre of cell i in [-1, 1].
double cell_centre(int i);

/// The Burgers rollout and its hand-written backward pass.
template <class T>
class Burgers {
 public:
  Burgers(const Context& ctx, const std::vector<double>& reference);

  static Grid make_grid();
  const Grid& grid() const { return grid_; }

  /// One step: d = explicit diffusion of u, out = semi-Lagrangian self-advection of d.
  void step(const CellVector<T>& u, CellVector<T>& d, CellVector<T>& out);

  /// The loss at u0 (the 16 states are kept); with `grad`, also d loss / d u0.
  double evaluate(const std::vector<T>& u0, std::vector<T>* grad);

  /// States 0..steps from u0 (host copies).
  std::vector<std::vector<T>> trajectory(const std::vector<T>& u0, int steps);

 private:
  Context ctx_;
  Grid grid_;
  std::vector<double> reference_;
  std::vector<CellVector<T>> u_;  // u_0 .. u_16
  std::vector<CellVector<T>> d_;  // d_k = diffused u_k
  CellVector<T> gu_, gd_;
  AdvectionOptions advection_;
};

extern template class Burgers<float>;
extern template class Burgers<double>;

}  // namespace dfluid::burgers
