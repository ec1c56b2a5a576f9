// Helpers shared by the HDF5 I/O tests: scratch directories and test fields.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "dfluid/dfluid.hpp"
#include "dfluid/io/hdf5.hpp"

namespace dfluid::iotest {

/// A fresh directory for one test: <tmp>/dfluid_io_<pid>_<name>, emptied first.
inline std::string scratch_dir(const std::string& name) {
  const char* base = std::getenv("TMPDIR");
  std::string dir = std::string(base && *base ? base : "/tmp") + "/dfluid_io_" +
                    std::to_string(::getpid()) + "_" + name;
  std::string cmd = "rm -rf '" + dir + "' && mkdir -p '" + dir + "'";
  if (std::system(cmd.c_str()) != 0) std::abort();
  return dir;
}

inline void remove_dir(const std::string& dir) {
  std::string cmd = "rm -rf '" + dir + "'";
  (void)std::system(cmd.c_str());
}

/// Deterministic values that exercise the bits: signs, tiny and large magnitudes.
template <class T>
std::vector<T> pattern(std::size_t n, std::uint32_t seed) {
  std::vector<T> v(n);
  std::uint64_t s = 0x9E3779B97F4A7C15ull * (seed + 1);
  for (std::size_t i = 0; i < n; ++i) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    double u = double(s >> 11) / double(1ull << 53) - 0.5;
    v[i] = T(u * (i % 7 == 0 ? 1e-30 : i % 11 == 0 ? 1e20 : 1.0));
  }
  if (n > 2) {
    v[1] = T(-0.0);
    v[2] = std::numeric_limits<T>::denorm_min();
  }
  return v;
}

template <class T>
void fill_pattern(const Context& ctx, Field<T>& f, std::uint32_t seed) {
  f.assign(ctx, pattern<T>(static_cast<std::size_t>(f.size()), seed));
}

template <class T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

/// A 3D grid with one periodic axis and mixed boundaries, and its 2D counterpart.
inline Grid test_grid(int dim) {
  if (dim == 2) {
    Grid g = Grid::make_2d(12, 9, 0.125, {-1.0, 0.5});
    g.set_boundary(0, BoundaryKind::Periodic, BoundaryKind::Periodic);
    g.set_boundary(1, BoundaryKind::Wall, BoundaryKind::Open);
    return g;
  }
  Grid g = Grid::make_3d(10, 7, 6, 0.25, {0.5, -2.0, 1.0});
  g.set_boundary(1, BoundaryKind::Periodic, BoundaryKind::Periodic);
  g.set_boundary(2, BoundaryKind::Open, BoundaryKind::Wall);
  return g;
}

}  // namespace dfluid::iotest
