// Helpers of the face-fraction tests (test_face_fractions.cpp, test_ghost_fluid.cpp).
#pragma once

#include <vector>

#include "dfluid/grid.hpp"

namespace dfluid::testing {

/// Node values phi(x, y, z) of a function of position on g's nodes (x fastest): the node
/// signed distances face_open_fractions and face_center_distance take.
template <class F>
std::vector<double> node_values(const Grid& g, F phi) {
  std::vector<double> v;
  const int m2 = g.dim > 2 ? g.n[2] + 1 : 1, m1 = g.dim > 1 ? g.n[1] + 1 : 1;
  for (int k = 0; k < m2; ++k)
    for (int j = 0; j < m1; ++j)
      for (int i = 0; i <= g.n[0]; ++i)
        v.push_back(phi(g.origin[0] + i * g.dx, g.origin[1] + j * g.dx, g.origin[2] + k * g.dx));
  return v;
}

}  // namespace dfluid::testing
