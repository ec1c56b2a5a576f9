#include "burgers/burgers_problem.hpp"

#include <cmath>
#include <fstream>
#include <utility>

namespace dfluid::burgers {

std::vector<double> read_reference(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw InvalidArgument("cannot read the reference file '" + path +
                          "' (burgers_reference_t0.5.txt); pass its path with --reference FILE");
  std::vector<double> v;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    std::size_t used = 0;
    double x = 0;
    try {
      x = std::stod(line, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || !std::isfinite(x))
      throw InvalidArgument("reference file '" + path + "', line " + std::to_string(lineno) +
                            ": expected a number (--reference)");
    v.push_back(x);
  }
  if (int(v.size()) != kCells)
    throw InvalidArgument("reference file '" + path + "' holds " + std::to_string(v.size()) +
                          " values, expected " + std::to_string(kCells) + " (--reference)");
  return v;
}

double cell_centre(int i) {
  return -1.0 + (i + 0.5) * 2.0 / kCells;
}

template <class T>
Burgers<T>::Burgers(const Context& ctx, const std::vector<double>& reference)
    : ctx_(ctx), grid_(make_grid()), reference_(reference), gu_(ctx, grid_), gd_(ctx, grid_) {
  for (int k = 0; k <= kTargetSteps; ++k) {
    u_.emplace_back(ctx, grid_);
    d_.emplace_back(ctx, grid_);
  }
  advection_.scheme = AdvectionScheme::SemiLagrangian;
  advection_.backtrace = Backtrace::Euler;
}

template <class T>
Grid Burgers<T>::make_grid() {
  Grid g = Grid::make_1d(kCells, 2.0 / kCells, -1.0);
  g.set_boundary(BoundaryKind::Periodic);
  return g;
}

template <class T>
void Burgers<T>::step(const CellVector<T>& u, CellVector<T>& d, CellVector<T>& out) {
  diffuse_explicit(ctx_, u, T(kViscosity), T(kDt), d);
  advect(ctx_, d, d, kDt, out, advection_);
}

template <class T>
double Burgers<T>::evaluate(const std::vector<T>& u0, std::vector<T>* grad) {
  u_[0][0].assign(ctx_, u0);
  for (int k = 0; k < kTargetSteps; ++k)
    step(u_[k], d_[k], u_[k + 1]);
  const std::vector<T> u16 = u_[kTargetSteps][0].to_vector(ctx_);
  double sum = 0;
  std::vector<T> g16(kCells);
  for (int i = 0; i < kCells; ++i) {
    const double diff = double(u16[i]) - reference_[i];
    sum += diff * diff;
    g16[i] = T(diff * 2.0 / kCells);
  }
  if (grad) {
    gu_[0].assign(ctx_, g16);
    for (int k = kTargetSteps - 1; k >= 0; --k) {
      fill(ctx_, gd_[0], T(0));
      advect_adjoint(ctx_, d_[k], kDt, gu_, gd_, advection_);  // u_{k+1} = A(d_k, d_k)
      fill(ctx_, gu_[0], T(0));
      diffuse_explicit_adjoint(ctx_, gd_, T(kViscosity), T(kDt), gu_);  // d_k = D(u_k)
    }
    *grad = gu_[0].to_vector(ctx_);
  }
  return 0.5 * sum * 2.0 / kCells;
}

template <class T>
std::vector<std::vector<T>> Burgers<T>::trajectory(const std::vector<T>& u0, int steps) {
  CellVector<T> a(ctx_, grid_), d(ctx_, grid_), b(ctx_, grid_);
  a[0].assign(ctx_, u0);
  std::vector<std::vector<T>> states{u0};
  for (int k = 0; k < steps; ++k) {
    step(a, d, b);
    std::swap(a, b);
    states.push_back(a[0].to_vector(ctx_));
  }
  return states;
}

template class Burgers<float>;
template class Burgers<double>;

}  // namespace dfluid::burgers
