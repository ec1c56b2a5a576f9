// What the dfluid-bench modes share: the --sizes syntax, the benchmarked step's
// configuration, deterministic smoke, and the median of repeated timed runs.
#pragma once

#include <algorithm>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "dfluid/dfluid.hpp"

namespace dfluid::bench {

/// "256x256" (2D) or "64x64x64" (3D), closed box, dx = 1.
inline Grid parse_size(const std::string& s) {
  int n[3] = {0, 0, 0}, count = 0;
  std::stringstream in(s);
  std::string part;
  try {
    while (std::getline(in, part, 'x') && count < 3)
      n[count++] = std::stoi(part);
  } catch (const std::exception&) {
    count = 0;
  }
  if (count == 2 && in.eof()) return Grid::make_2d(n[0], n[1], 1.0);
  if (count == 3 && in.eof()) return Grid::make_3d(n[0], n[1], n[2], 1.0);
  throw InvalidArgument("--sizes: '" + s + "' must look like 256x256 or 64x64x64");
}

/// The benchmarked step: the usual smoke step (MacCormack scalar, semi-Lagrangian
/// velocity, buoyancy, MGPCG projection to 1e-4), no NaN checks (no host waits
/// beyond the solver's own).
inline StepConfig bench_config() {
  StepConfig cfg;
  cfg.buoyancy = 0.1;
  cfg.pressure.rel_tol = 1e-4;
  cfg.check_finite = false;
  return cfg;
}

/// Deterministic pseudo-random smoke in [0, 1).
template <class T>
void seed_smoke(const Context& ctx, SmokeState<T>& st) {
  std::vector<T> rho(st.grid().cells());
  for (Index i = 0; i < Index(rho.size()); ++i)
    rho[i] = T((i * 2654435761u) % 1000) / T(1000);
  st.scalars[0].assign(ctx, rho);
}

/// Median milliseconds of `repeats` runs of f after one warm-up run (CUDA events on
/// the GPU, a steady clock on the CPU).
inline double median_ms(const Context& ctx, int repeats, const std::function<void()>& f) {
  StreamTimer t(ctx);
  std::vector<double> ms;
  for (int r = 0; r <= repeats; ++r) {
    t.start();
    f();
    t.stop();
    if (r > 0) ms.push_back(t.elapsed_ms());
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

}  // namespace dfluid::bench
