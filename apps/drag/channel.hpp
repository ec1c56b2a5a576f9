// The channel of dfluid-drag: a 2D channel with no-slip walls at the bottom and the top, a
// velocity inflow on the left (x-low) and an outflow on the right (x-high), and a solid body:
// by default a cylinder of diameter D = 1 in the proportions of the Schäfer–Turek (1996)
// benchmark (channel 4.1 D high, cylinder centre 2 D from the inflow and 2 D above the bottom
// wall, so 0.1 D closer to the bottom than to the top), or a body drawn in a PNG mask.
//
// Units: lengths in cylinder diameters (the channel is always 4.1 high), velocities in the
// mean inflow speed U = 1, density 1. The viscosity follows the Reynolds number,
// ν = U D_ref / Re, with D_ref the body's frontal height (1 for the cylinder; for a mask, the
// height its solid cells span). The drag coefficient is C_D = 2 F_x / (U² D_ref).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "dfluid/dfluid.hpp"

namespace dfluid::drag {

inline constexpr double kChannelHeight = 4.1;  ///< in cylinder diameters
inline constexpr double kMeanInflow = 1.0;     ///< U

struct ChannelOptions {
  int size = 32;         ///< cells across the channel
  double length = 11;    ///< channel length in cylinder diameters
  double reynolds = 20;  ///< U D_ref / ν
  std::string mask;      ///< PNG/JPEG/BMP/TGA picture of the body (empty: the cylinder)
  bool mask_bright_is_solid = false;
  /// The cylinder as face fractions with its no-slip wall at its true distance (ghost fluid;
  /// dfluid/face_fractions.hpp) instead of the staircase of its cells. Not with a mask.
  bool fractions = false;
};

struct Channel {
  Grid grid;                        ///< inflow / outflow along x, no-slip walls along y
  std::vector<std::uint8_t> solid;  ///< per cell (x fastest), 1 = body
  double reference_length = 1;      ///< D_ref: the body's frontal height
  double viscosity = 0;             ///< ν = U D_ref / Re
  std::array<double, 2> center{};   ///< the body's centroid (rotation axis)
  /// The parabolic inflow profile with mean U, one value per face of the x-low side
  /// (u(y) = 6 U y (H - y) / H² at the face centres, rescaled so that the mean is exactly U).
  std::vector<double> base_inflow;
  std::string description;  ///< "cylinder D = 1 at (2, 2)" or "body from mask.png, ..."
  /// ChannelOptions::fractions: the cylinder's signed distance at the grid's nodes (x fastest,
  /// > 0 in the fluid), from which the body's open fractions and face distance come; empty:
  /// the staircase `solid` is the body (it still draws the body in the pictures).
  std::vector<double> node_distance;
};

/// The grid alone (for the memory check before anything is built).
Grid channel_grid(const ChannelOptions& o);

/// The channel of the options. Throws InvalidArgument naming the option when the mask cannot
/// be read, holds no solid cell, touches the inflow or outflow side, or blocks the channel (no
/// fluid path from the inflow to the outflow), or when fractions are asked for with a mask.
Channel make_channel(const ChannelOptions& o);

}  // namespace dfluid::drag
