#include "drag/frames.hpp"

#include <algorithm>
#include <cmath>

namespace dfluid::drag {

std::vector<double> vorticity(const Grid& g, const std::vector<double>& u,
                              const std::vector<double>& v,
                              const std::vector<std::uint8_t>& solid) {
  const int nx = g.n[0], ny = g.n[1];
  // Cell-centred components: the mean of the two faces of each cell.
  std::vector<double> uc(std::size_t(nx) * ny), vc(uc.size());
  for (int j = 0; j < ny; ++j)
    for (int i = 0; i < nx; ++i) {
      const std::size_t c = std::size_t(j) * nx + i;
      uc[c] = 0.5 * (u[std::size_t(j) * (nx + 1) + i] + u[std::size_t(j) * (nx + 1) + i + 1]);
      vc[c] = 0.5 * (v[c] + v[c + std::size_t(nx)]);
    }
  std::vector<double> w(uc.size(), 0.0);
  for (int j = 0; j < ny; ++j)
    for (int i = 0; i < nx; ++i) {
      const std::size_t c = std::size_t(j) * nx + i;
      if (solid[c]) continue;
      const int il = std::max(i - 1, 0), ir = std::min(i + 1, nx - 1);
      const int jl = std::max(j - 1, 0), jr = std::min(j + 1, ny - 1);
      const double dvdx =
          (vc[std::size_t(j) * nx + ir] - vc[std::size_t(j) * nx + il]) / ((ir - il) * g.dx);
      const double dudy =
          (uc[std::size_t(jr) * nx + i] - uc[std::size_t(jl) * nx + i]) / ((jr - jl) * g.dx);
      w[c] = dvdx - dudy;
    }
  return w;
}

app::Image render_vorticity(const Grid& g, const std::vector<double>& w,
                            const std::vector<std::uint8_t>& solid, double limit, int scale) {
  const int nx = g.n[0], ny = g.n[1];
  app::Image img(nx * scale, ny * scale);
  for (int j = 0; j < ny; ++j)
    for (int i = 0; i < nx; ++i) {
      const std::size_t c = std::size_t(j) * nx + i;
      app::Rgb col{150, 150, 150};
      if (!solid[c]) {
        // White at 0, towards blue (negative) or red (positive).
        const double t = std::clamp(limit > 0 ? w[c] / limit : 0.0, -1.0, 1.0);
        const auto fade = [](double a) { return std::uint8_t(std::lround(255 * (1 - a))); };
        col = t >= 0 ? app::Rgb{255, fade(t), fade(t)} : app::Rgb{fade(-t), fade(-t), 255};
      }
      // Row 0 of the image is the top: the highest y.
      for (int py = 0; py < scale; ++py)
        for (int px = 0; px < scale; ++px)
          img.set(i * scale + px, (ny - 1 - j) * scale + py, col);
    }
  return img;
}

app::Image stack_vertically(const std::vector<app::Image>& panels,
                            const std::vector<std::string>& captions, int gap) {
  const int caption_height = 14;
  int width = 0, height = gap;
  for (const auto& p : panels) {
    width = std::max(width, p.width);
    height += caption_height + p.height + gap;
  }
  app::Image out(width + 2 * gap, height);
  int y = gap;
  for (std::size_t k = 0; k < panels.size(); ++k) {
    if (k < captions.size()) app::draw_text(out, gap, y + 2, captions[k], {0, 0, 0});
    y += caption_height;
    for (int py = 0; py < panels[k].height; ++py)
      for (int px = 0; px < panels[k].width; ++px)
        out.set(gap + px, y + py, panels[k].get(px, py));
    y += panels[k].height + gap;
  }
  return out;
}

}  // namespace dfluid::drag
