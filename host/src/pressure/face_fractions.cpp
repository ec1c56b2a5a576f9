// Open fractions of MAC faces from a signed distance at the nodes (dfluid/face_fractions.hpp).
// Built once on the host, like the staircase's mask; the solver reads them as its weights.
#include "dfluid/face_fractions.hpp"

#include <cmath>
#include <string>

#include "dfluid/error.hpp"

namespace dfluid {
namespace {

/// Fraction of the segment [a, b] (linear values) where the value is positive.
double segment_fraction(double a, double b) {
  if (a > 0 && b > 0) return 1;
  if (a <= 0 && b <= 0) return 0;
  return a > 0 ? a / (a - b) : b / (b - a);
}

/// Fraction of a triangle (linear values at its corners) where the value is positive: the
/// corner triangle cut off by the zero line, or its complement (exact for linear values).
double triangle_fraction(double a, double b, double c) {
  const int pos = (a > 0) + (b > 0) + (c > 0);
  if (pos == 3) return 1;
  if (pos == 0) return 0;
  // Rotate so that `a` is the corner alone on its side.
  if ((b > 0) == (pos == 1)) std::swap(a, b);
  if ((c > 0) == (pos == 1)) std::swap(a, c);
  const double corner = (a / (a - b)) * (a / (a - c));
  return pos == 1 ? corner : 1 - corner;
}

/// Square with corners q00, q10, q11, q01 (in order around it): four triangles joining each
/// edge to the centre, whose value is the corners' mean.
double square_fraction(double q00, double q10, double q11, double q01) {
  const double m = 0.25 * (q00 + q10 + q11 + q01);
  return 0.25 * (triangle_fraction(q00, q10, m) + triangle_fraction(q10, q11, m) +
                 triangle_fraction(q11, q01, m) + triangle_fraction(q01, q00, m));
}

}  // namespace

Index grid_node_count(const Grid& g) {
  Index c = 1;
  for (int a = 0; a < g.dim; ++a)
    c *= Index(g.n[a] + 1);
  return c;
}

std::vector<double> circle_node_distance(const Grid& g, std::array<double, 3> center,
                                         double radius) {
  g.validate();
  if (!(radius > 0) || !std::isfinite(radius))
    throw InvalidArgument("circle_node_distance: radius " + std::to_string(radius) +
                          " must be finite and > 0");
  for (int a = 0; a < 3; ++a)
    if (!std::isfinite(center[a]))
      throw InvalidArgument("circle_node_distance: center must be finite");
  int m[3] = {1, 1, 1};
  for (int a = 0; a < g.dim; ++a)
    m[a] = g.n[a] + 1;
  std::vector<double> phi(std::size_t(grid_node_count(g)));
  for (int k = 0; k < m[2]; ++k)
    for (int j = 0; j < m[1]; ++j)
      for (int i = 0; i < m[0]; ++i) {
        const int idx[3] = {i, j, k};
        double r2 = 0;
        for (int a = 0; a < g.dim; ++a) {
          const double d = g.origin[a] + idx[a] * g.dx - center[a];
          r2 += d * d;
        }
        phi[std::size_t(i + Index(m[0]) * (j + Index(m[1]) * k))] = std::sqrt(r2) - radius;
      }
  return phi;
}

namespace {

/// Node values checked against g (the count, finiteness), read by node index; `fn` names the
/// caller in the errors.
class NodeValues {
 public:
  NodeValues(const Grid& g, const std::vector<double>& phi, const char* fn) : phi_(phi) {
    g.validate();
    const Index nodes = grid_node_count(g);
    if (Index(phi.size()) != nodes)
      throw InvalidArgument(std::string(fn) + ": node_phi has " + std::to_string(phi.size()) +
                            " values, the grid has " + std::to_string(nodes) +
                            " nodes (grid_node_count): sample phi at every node, x fastest");
    for (double v : phi)
      if (!std::isfinite(v))
        throw InvalidArgument(std::string(fn) +
                              ": node_phi holds a non-finite value: pass a finite signed "
                              "distance at every node");
    for (int a = 0; a < g.dim; ++a)
      m_[a] = g.n[a] + 1;
  }
  double operator()(int i, int j, int k) const {
    return phi_[std::size_t(i + Index(m_[0]) * (j + Index(m_[1]) * k))];
  }

 private:
  const std::vector<double>& phi_;
  int m_[3] = {1, 1, 1};
};

/// For every face of every active component, f(corner) with corner(db, dc) the node value
/// at the face's corner +db along its first tangential axis and +dc along its second
/// (node (i, j, k) is the face's low corner).
template <class T, class F>
MacVelocity<T> per_face(const Context& ctx, const Grid& g, const NodeValues& phi, F f) {
  MacVelocity<T> out(ctx, g);
  for (int a = 0; a < g.dim; ++a) {
    const std::array<int, 3> e = out[a].extents();
    std::vector<T> v(std::size_t(out[a].size()));
    // The two tangential axes of the face (b, c); in 2D c is the unused axis.
    const int b = (a + 1) % 3, c = (a + 2) % 3;
    for (int k = 0; k < e[2]; ++k)
      for (int j = 0; j < e[1]; ++j)
        for (int i = 0; i < e[0]; ++i) {
          auto corner = [&](int db, int dc) {
            int p[3] = {i, j, k};
            if (b < g.dim) p[b] += db;
            if (c < g.dim) p[c] += dc;
            return phi(p[0], p[1], p[2]);
          };
          v[std::size_t(i + Index(e[0]) * (j + Index(e[1]) * k))] = T(f(corner, b));
        }
    out[a].assign(ctx, v);
  }
  return out;
}

}  // namespace

template <class T>
MacVelocity<T> face_open_fractions(const Context& ctx, const Grid& g,
                                   const std::vector<double>& node_phi) {
  const NodeValues phi(g, node_phi, "face_open_fractions");
  return per_face<T>(ctx, g, phi, [&](auto at, int b) {
    if (g.dim == 1) return at(0, 0) > 0 ? 1.0 : 0.0;
    if (g.dim == 2) return segment_fraction(at(0, 0), b < 2 ? at(1, 0) : at(0, 1));
    return square_fraction(at(0, 0), at(1, 0), at(1, 1), at(0, 1));
  });
}

template <class T>
MacVelocity<T> face_center_distance(const Context& ctx, const Grid& g,
                                    const std::vector<double>& node_phi) {
  const NodeValues phi(g, node_phi, "face_center_distance");
  return per_face<T>(ctx, g, phi, [&](auto at, int b) {
    if (g.dim == 1) return at(0, 0);
    if (g.dim == 2) return 0.5 * (at(0, 0) + (b < 2 ? at(1, 0) : at(0, 1)));
    return 0.25 * (at(0, 0) + at(1, 0) + at(1, 1) + at(0, 1));
  });
}

template <class T>
MacVelocity<T> face_open_fractions_from_mask(const Context& ctx, const ObstacleMask& mask) {
  const Grid& g = mask.grid();
  if (mask.location() != Location::Cell)
    throw InvalidArgument("face_open_fractions_from_mask: the mask must be a cell field");
  const std::vector<std::uint8_t> s = mask.to_vector(ctx);
  auto solid = [&](int i, int j, int k) {
    return s[std::size_t(i + Index(g.n[0]) * (j + Index(g.n[1]) * k))] != 0;
  };
  MacVelocity<T> out(ctx, g);
  for (int a = 0; a < g.dim; ++a) {
    const std::array<int, 3> e = out[a].extents();
    const bool per = g.periodic(a);
    std::vector<T> v(std::size_t(out[a].size()));
    for (int k = 0; k < e[2]; ++k)
      for (int j = 0; j < e[1]; ++j)
        for (int i = 0; i < e[0]; ++i) {
          int p[3] = {i, j, k};
          const int f = p[a];
          bool open = true;
          if (f < g.n[a]) open = open && !solid(p[0], p[1], p[2]);
          const int lo = f > 0 ? f - 1 : per ? g.n[a] - 1 : -1;
          if (lo >= 0) {
            p[a] = lo;
            open = open && !solid(p[0], p[1], p[2]);
          }
          v[std::size_t(i + Index(e[0]) * (j + Index(e[1]) * k))] = open ? T(1) : T(0);
        }
    out[a].assign(ctx, v);
  }
  return out;
}

template MacVelocity<float> face_open_fractions<float>(const Context&, const Grid&,
                                                       const std::vector<double>&);
template MacVelocity<double> face_open_fractions<double>(const Context&, const Grid&,
                                                         const std::vector<double>&);
template MacVelocity<float> face_center_distance<float>(const Context&, const Grid&,
                                                        const std::vector<double>&);
template MacVelocity<double> face_center_distance<double>(const Context&, const Grid&,
                                                          const std::vector<double>&);
template MacVelocity<float> face_open_fractions_from_mask<float>(const Context&,
                                                                 const ObstacleMask&);
template MacVelocity<double> face_open_fractions_from_mask<double>(const Context&,
                                                                   const ObstacleMask&);

}  // namespace dfluid
