// PNG images for the apps (stb_image / stb_image_write / stb_easy_font from Debian's
// libstb-dev): field pictures with a colour map, side-by-side panels with captions, a loss
// curve plot, and reading a grayscale target picture.
//
// Field data are in dfluid's cell order (x fastest, y up); images have row 0 at the top, so
// the conversions flip y.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dfluid::app {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
};

struct Image {
  Image() = default;
  Image(int w, int h, Rgb background = {255, 255, 255});
  int width = 0, height = 0;
  std::vector<std::uint8_t> rgb;  ///< row-major, top row first, 3 bytes per pixel
  void set(int x, int y, Rgb c);  ///< ignores pixels outside the image
  Rgb get(int x, int y) const;
};

/// A perceptually ordered dark-to-bright colour map (black → blue → orange → white), t in [0,1].
Rgb colormap(double t);

/// nx × ny cell values (x fastest, y up) as an image, `scale` pixels per cell; values map
/// linearly from [vmin, vmax] to the colour map (clamped).
Image render_field(const std::vector<double>& values, int nx, int ny, double vmin, double vmax,
                   int scale = 1);

/// Panels left to right with `gap` pixels between them and a caption line above each.
Image side_by_side(const std::vector<Image>& panels, const std::vector<std::string>& captions,
                   int gap = 8);

/// Draws text (stb_easy_font, ASCII) with its top-left corner at (x, y), `scale` pixels per
/// font unit.
void draw_text(Image& img, int x, int y, const std::string& text, Rgb color, int scale = 1);

/// A line plot of y against its index (iterations), with axes, tick labels and a title;
/// `log_y` plots log10(y) (non-positive values are skipped).
Image plot_curve(const std::vector<double>& y, const std::string& title, bool log_y,
                 int width = 640, int height = 400);

/// Writes a PNG atomically; throws dfluid::Error naming the path.
void write_png(const std::string& path, const Image& img);

/// A picture as grayscale values in [0, 1] (luma of RGB, alpha multiplies), resampled to
/// nx × ny cells in dfluid's cell order (y up) by area averaging. `invert`: dark pixels give
/// high values (a black drawing on white paper). Throws InvalidArgument naming the file when
/// it cannot be read or decoded.
std::vector<double> read_picture(const std::string& path, int nx, int ny, bool invert);

}  // namespace dfluid::app
