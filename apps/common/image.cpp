#include "common/image.hpp"

#include <stb_easy_font.h>
#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "common/output.hpp"
#include "dfluid/error.hpp"

namespace dfluid::app {

Image::Image(int w, int h, Rgb bg) : width(w), height(h), rgb(std::size_t(w) * h * 3) {
  for (std::size_t p = 0; p < std::size_t(w) * h; ++p) {
    rgb[3 * p] = bg.r;
    rgb[3 * p + 1] = bg.g;
    rgb[3 * p + 2] = bg.b;
  }
}

void Image::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  const std::size_t p = 3 * (std::size_t(y) * width + x);
  rgb[p] = c.r;
  rgb[p + 1] = c.g;
  rgb[p + 2] = c.b;
}

Rgb Image::get(int x, int y) const {
  const std::size_t p = 3 * (std::size_t(y) * width + x);
  return {rgb[p], rgb[p + 1], rgb[p + 2]};
}

Rgb colormap(double t) {
  // Piecewise-linear through black, deep blue, purple, orange, pale yellow.
  static const double stops[5][3] = {
      {0, 0, 0}, {30, 40, 130}, {160, 50, 130}, {245, 150, 40}, {255, 250, 210}};
  if (!(t > 0)) t = 0;  // NaN → 0
  if (t > 1) t = 1;
  const double x = t * 4;
  const int i = std::min(3, int(x));
  const double f = x - i;
  auto mix = [&](int c) {
    return std::uint8_t(std::lround(stops[i][c] + f * (stops[i + 1][c] - stops[i][c])));
  };
  return {mix(0), mix(1), mix(2)};
}

Image render_field(const std::vector<double>& v, int nx, int ny, double vmin, double vmax,
                   int scale) {
  if (std::size_t(nx) * ny != v.size())
    throw InvalidArgument("render_field: " + std::to_string(v.size()) + " values for " +
                          std::to_string(nx) + "x" + std::to_string(ny) + " cells");
  scale = std::max(1, scale);
  Image img(nx * scale, ny * scale);
  const double range = vmax > vmin ? vmax - vmin : 1.0;
  for (int j = 0; j < ny; ++j)
    for (int i = 0; i < nx; ++i) {
      const Rgb c = colormap((v[std::size_t(j) * nx + i] - vmin) / range);
      for (int b = 0; b < scale; ++b)
        for (int a = 0; a < scale; ++a)
          img.set(i * scale + a, (ny - 1 - j) * scale + b, c);
    }
  return img;
}

void draw_text(Image& img, int x, int y, const std::string& text, Rgb color, int scale) {
  // stb_easy_font emits quads (4 vertices of 16 bytes: x, y, z floats + colour) in font
  // units; fill each quad's pixels.
  static char buffer[99999];
  std::string t = text;
  const int quads = stb_easy_font_print(0, 0, t.data(), nullptr, buffer, sizeof(buffer));
  for (int q = 0; q < quads; ++q) {
    const float* v = reinterpret_cast<const float*>(buffer + q * 64);
    const float x0 = v[0], y0 = v[1], x1 = v[8], y1 = v[9];
    for (int py = int(y0 * scale); py < int(y1 * scale); ++py)
      for (int px = int(x0 * scale); px < int(x1 * scale); ++px)
        img.set(x + px, y + py, color);
  }
}

Image side_by_side(const std::vector<Image>& panels, const std::vector<std::string>& captions,
                   int gap) {
  constexpr int kCaption = 16;
  int w = gap, h = 0;
  for (const Image& p : panels) {
    w += p.width + gap;
    h = std::max(h, p.height);
  }
  Image out(w, h + kCaption + 2 * gap, {255, 255, 255});
  int x = gap;
  for (std::size_t k = 0; k < panels.size(); ++k) {
    const Image& p = panels[k];
    if (k < captions.size()) draw_text(out, x, gap / 2 + 2, captions[k], {0, 0, 0});
    for (int j = 0; j < p.height; ++j)
      for (int i = 0; i < p.width; ++i)
        out.set(x + i, gap + kCaption + j, p.get(i, j));
    x += p.width + gap;
  }
  return out;
}

namespace {

std::string tick_label(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}

void line(Image& img, double x0, double y0, double x1, double y1, Rgb c) {
  const int n = int(std::max(std::abs(x1 - x0), std::abs(y1 - y0))) + 1;
  for (int k = 0; k <= n; ++k) {
    const double t = double(k) / n;
    const int x = int(std::lround(x0 + t * (x1 - x0))), y = int(std::lround(y0 + t * (y1 - y0)));
    img.set(x, y, c);
    img.set(x, y + 1, c);  // 2 px wide
  }
}

}  // namespace

Image plot_curve(const std::vector<double>& y, const std::string& title, bool log_y, int width,
                 int height) {
  Image img(width, height);
  const int left = 70, right = 20, top = 30, bottom = 40;
  const int pw = width - left - right, ph = height - top - bottom;
  draw_text(img, left, 8, title, {0, 0, 0}, 2);
  std::vector<std::pair<double, double>> pts;
  for (std::size_t k = 0; k < y.size(); ++k) {
    if (!std::isfinite(y[k]) || (log_y && y[k] <= 0)) continue;
    pts.emplace_back(double(k), log_y ? std::log10(y[k]) : y[k]);
  }
  const Rgb axis{60, 60, 60}, curve{200, 60, 30}, grid{225, 225, 225};
  double ymin = 0, ymax = 1;
  if (!pts.empty()) {
    ymin = ymax = pts[0].second;
    for (auto& p : pts) {
      ymin = std::min(ymin, p.second);
      ymax = std::max(ymax, p.second);
    }
  }
  if (ymax - ymin < 1e-12) {
    ymin -= 0.5;
    ymax += 0.5;
  }
  const double xmax = std::max(1.0, double(y.size() > 0 ? y.size() - 1 : 1));
  auto px = [&](double x) { return left + pw * x / xmax; };
  auto py = [&](double v) { return top + ph * (1 - (v - ymin) / (ymax - ymin)); };
  for (int t = 0; t <= 4; ++t) {  // horizontal grid and y tick labels
    const double v = ymin + (ymax - ymin) * t / 4;
    line(img, left, py(v), left + pw, py(v), grid);
    draw_text(img, 4, int(py(v)) - 3, tick_label(log_y ? std::pow(10.0, v) : v), axis);
  }
  for (int t = 0; t <= 4; ++t) {  // x tick labels (iterations)
    const double x = xmax * t / 4;
    draw_text(img, int(px(x)) - 6, top + ph + 6, tick_label(std::round(x)), axis);
  }
  draw_text(img, left + pw / 2 - 20, height - 14, "iteration", axis);
  line(img, left, top, left, top + ph, axis);
  line(img, left, top + ph, left + pw, top + ph, axis);
  for (std::size_t k = 1; k < pts.size(); ++k)
    line(img, px(pts[k - 1].first), py(pts[k - 1].second), px(pts[k].first), py(pts[k].second),
         curve);
  if (pts.size() == 1)
    line(img, px(pts[0].first) - 2, py(pts[0].second), px(pts[0].first) + 2, py(pts[0].second),
         curve);
  return img;
}

void write_png(const std::string& path, const Image& img) {
  std::string bytes;
  auto append = [](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), std::size_t(size));
  };
  if (!stbi_write_png_to_func(append, &bytes, img.width, img.height, 3, img.rgb.data(),
                              img.width * 3))
    throw Error("encoding the PNG image for '" + path + "' failed");
  write_file_atomic(path, bytes);
}

std::vector<double> read_picture(const std::string& path, int nx, int ny, bool invert) {
  int w = 0, h = 0, comp = 0;
  unsigned char* data = stbi_load(path.c_str(), &w, &h, &comp, 4);
  if (!data)
    throw InvalidArgument("cannot read the picture '" + path + "': " + stbi_failure_reason() +
                          " (give a PNG, JPEG, BMP or TGA file)");
  std::vector<double> lum(std::size_t(w) * h);
  for (std::size_t p = 0; p < lum.size(); ++p) {
    const unsigned char* c = data + 4 * p;
    double l = (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255.0;
    if (invert) l = 1 - l;
    lum[p] = l * (c[3] / 255.0);  // transparent pixels carry no smoke
  }
  stbi_image_free(data);
  // Area-average the picture onto the cells: cell (i, j) (j up) covers picture pixels
  // x in [i w/nx, (i+1) w/nx), rows from the top in [(ny-1-j) h/ny, (ny-j) h/ny).
  std::vector<double> out(std::size_t(nx) * ny, 0.0);
  for (int j = 0; j < ny; ++j)
    for (int i = 0; i < nx; ++i) {
      const double x0 = double(i) * w / nx, x1 = double(i + 1) * w / nx;
      const double y0 = double(ny - 1 - j) * h / ny, y1 = double(ny - j) * h / ny;
      double acc = 0, area = 0;
      for (int py = int(y0); py < int(std::ceil(y1)) && py < h; ++py)
        for (int px = int(x0); px < int(std::ceil(x1)) && px < w; ++px) {
          const double ox = std::min(x1, px + 1.0) - std::max(x0, double(px));
          const double oy = std::min(y1, py + 1.0) - std::max(y0, double(py));
          if (ox <= 0 || oy <= 0) continue;
          acc += ox * oy * lum[std::size_t(py) * w + px];
          area += ox * oy;
        }
      out[std::size_t(j) * nx + i] = area > 0 ? acc / area : 0.0;
    }
  return out;
}

}  // namespace dfluid::app
