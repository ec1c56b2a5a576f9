// Host-side flood fill that labels floating fluid regions (see floating_regions.hpp).
// It runs once per hierarchy build, so a plain depth-first fill on the CPU is
// simpler than a device connected-components pass and costs nothing per solve.
#include "pressure/floating_regions.hpp"

namespace dfluid::detail {

std::vector<std::int32_t> label_floating_regions(const Grid& g,
                                                 const std::array<std::vector<double>, 3>& w,
                                                 std::vector<double>& counts) {
  const int n0 = g.n[0], n1 = g.n[1], n2 = g.n[2];
  const Index cells = g.cells();
  std::vector<std::int32_t> lab(std::size_t(cells), -1);
  counts.clear();
  auto fidx = [&](int a, int i, int j, int k) {  // index into the faces normal to a
    const auto e = g.face_extents(a);
    return std::size_t(i + Index(e[0]) * (j + Index(e[1]) * k));
  };
  std::vector<Index> stack;
  std::vector<std::int32_t> tmp(std::size_t(cells), -1);  // all regions, floating or not
  std::int32_t next = 0;
  for (Index seed = 0; seed < cells; ++seed) {
    if (tmp[seed] >= 0) continue;
    bool has_face = false, floating = true;
    Index count = 0;
    stack.assign(1, seed);
    tmp[seed] = next;
    while (!stack.empty()) {
      const Index c = stack.back();
      stack.pop_back();
      ++count;
      const int ci[3] = {int(c % n0), int((c / n0) % n1), int(c / (Index(n0) * n1))};
      for (int a = 0; a < g.dim; ++a)
        for (int side = 0; side < 2; ++side) {
          int f[3] = {ci[0], ci[1], ci[2]};
          if (side == 1) f[a] = (ci[a] + 1 == g.n[a] && g.periodic(a)) ? 0 : ci[a] + 1;
          if (w[a][fidx(a, f[0], f[1], f[2])] == 0) continue;
          has_face = true;
          int nb[3] = {ci[0], ci[1], ci[2]};
          nb[a] = ci[a] + (side ? 1 : -1);
          if (g.periodic(a)) nb[a] = (nb[a] + g.n[a]) % g.n[a];
          if (nb[a] < 0 || nb[a] >= g.n[a]) {  // a free box-side face: Open
            floating = false;
            continue;
          }
          const Index ni = nb[0] + Index(n0) * (nb[1] + Index(n1) * nb[2]);
          if (tmp[ni] < 0) {
            tmp[ni] = next;
            stack.push_back(ni);
          }
        }
    }
    if (has_face && floating) {  // a real floating region: relabel it
      const std::int32_t id = std::int32_t(counts.size());
      counts.push_back(double(count));
      // The region's cells are exactly those with tmp == next; mark them.
      stack.assign(1, seed);
      lab[seed] = id;
      while (!stack.empty()) {
        const Index c = stack.back();
        stack.pop_back();
        const int ci[3] = {int(c % n0), int((c / n0) % n1), int(c / (Index(n0) * n1))};
        for (int a = 0; a < g.dim; ++a)
          for (int side = 0; side < 2; ++side) {
            int nb[3] = {ci[0], ci[1], ci[2]};
            nb[a] = ci[a] + (side ? 1 : -1);
            if (g.periodic(a)) nb[a] = (nb[a] + g.n[a]) % g.n[a];
            if (nb[a] < 0 || nb[a] >= g.n[a]) continue;
            const Index ni = nb[0] + Index(n0) * (nb[1] + Index(n1) * nb[2]);
            if (tmp[ni] == next && lab[ni] < 0) {
              lab[ni] = id;
              stack.push_back(ni);
            }
          }
      }
    }
    ++next;
  }
  (void)n2;
  return lab;
}

}  // namespace dfluid::detail
