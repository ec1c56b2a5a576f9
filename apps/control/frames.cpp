#include "control/frames.hpp"

#include <algorithm>

namespace dfluid::control {
namespace {

std::vector<double> mid_slice(const Grid& g, const std::vector<double>& v) {
  const int k = g.n[2] / 2;
  const std::size_t plane = std::size_t(g.n[0]) * g.n[1];
  return std::vector<double>(v.begin() + std::ptrdiff_t(plane * k),
                             v.begin() + std::ptrdiff_t(plane * (k + 1)));
}

std::vector<double> max_projection(const Grid& g, const std::vector<double>& v) {
  const std::size_t plane = std::size_t(g.n[0]) * g.n[1];
  std::vector<double> out(plane, 0.0);
  for (int k = 0; k < g.n[2]; ++k)
    for (std::size_t p = 0; p < plane; ++p)
      out[p] = std::max(out[p], v[plane * k + p]);
  return out;
}

}  // namespace

app::Image smoke_and_target(const Grid& g, const std::vector<double>& smoke,
                            const std::vector<double>& target, const std::string& caption,
                            double vmax) {
  // Small grids are enlarged so that a frame is at least ~256 pixels wide.
  const int scale = std::max(1, 256 / g.n[0]);
  const int nx = g.n[0], ny = g.n[1];
  if (g.dim == 2)
    return app::side_by_side({app::render_field(smoke, nx, ny, 0, vmax, scale),
                              app::render_field(target, nx, ny, 0, vmax, scale)},
                             {caption, "target"});
  return app::side_by_side({app::render_field(mid_slice(g, smoke), nx, ny, 0, vmax, scale),
                            app::render_field(mid_slice(g, target), nx, ny, 0, vmax, scale),
                            app::render_field(max_projection(g, smoke), nx, ny, 0, vmax, scale),
                            app::render_field(max_projection(g, target), nx, ny, 0, vmax, scale)},
                           {caption + " (mid z slice)", "target (mid z slice)",
                            caption + " (max along z)", "target (max along z)"});
}

}  // namespace dfluid::control
