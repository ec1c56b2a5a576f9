#include "dfluid/field.hpp"

#include <cmath>
#include <cstdint>

namespace dfluid {

const char* to_string(Location l) {
  switch (l) {
    case Location::Cell:
      return "cell";
    case Location::FaceX:
      return "x-faces";
    case Location::FaceY:
      return "y-faces";
    case Location::FaceZ:
      return "z-faces";
  }
  return "?";
}

std::array<int, 3> extents_of(const Grid& g, Location loc) {
  if (loc == Location::Cell) return g.n;
  int axis = static_cast<int>(loc) - 1;
  if (axis >= g.dim)
    throw InvalidArgument(std::string("location ") + to_string(loc) + " does not exist on a " +
                          std::to_string(g.dim) + "D grid");
  return g.face_extents(axis);
}

template <class T>
Field<T>::Field(const Context& ctx, const Grid& g, Location loc)
    : Field(ctx, g, loc, ctx.memory_space()) {}

template <class T>
Field<T>::Field(const Context& ctx, const Grid& g, Location loc, MemorySpace space)
    : grid_(g), loc_(loc) {
  g.validate();
  ext_ = extents_of(g, loc);
  sy_ = ext_[0];
  sz_ = Index(ext_[0]) * ext_[1];
  buf_ = Buffer<T>(ctx, size(), space);
}

template <class T>
Field<T> Field<T>::wrap(const Grid& g, Location loc, T* data, MemorySpace space, Index stride_y,
                        Index stride_z) {
  g.validate();
  Field f;
  f.grid_ = g;
  f.loc_ = loc;
  f.ext_ = extents_of(g, loc);
  if (!data) throw InvalidArgument("Field::wrap: data pointer is null");
  f.sy_ = stride_y ? stride_y : f.ext_[0];
  f.sz_ = stride_z ? stride_z : f.sy_ * f.ext_[1];
  if (f.sy_ < f.ext_[0] || f.sz_ < f.sy_ * f.ext_[1])
    throw InvalidArgument("Field::wrap: strides (" + std::to_string(f.sy_) + ", " +
                          std::to_string(f.sz_) + ") overlap rows of extent " +
                          std::to_string(f.ext_[0]) + "x" + std::to_string(f.ext_[1]));
  Index span = f.sz_ * (f.ext_[2] - 1) + f.sy_ * (f.ext_[1] - 1) + f.ext_[0];
  f.buf_ = Buffer<T>::wrap(data, span, space);
  return f;
}

template <class T>
std::vector<T> Field<T>::to_vector(const Context& ctx) const {
  std::vector<T> out(static_cast<std::size_t>(size()));
  if (empty()) return out;
  if (sy_ == ext_[0] && sz_ == Index(ext_[0]) * ext_[1]) {
    detail::copy_to_host(ctx, out.data(), data(), space(), out.size() * sizeof(T));
    return out;
  }
  for (int k = 0; k < ext_[2]; ++k)
    for (int j = 0; j < ext_[1]; ++j)
      detail::copy_to_host(ctx, out.data() + (Index(k) * ext_[1] + j) * ext_[0],
                           data() + k * sz_ + j * sy_, space(), sizeof(T) * ext_[0]);
  return out;
}

template <class T>
void Field<T>::assign(const Context& ctx, const std::vector<T>& v) {
  if (Index(v.size()) != size())
    throw ShapeMismatch("Field::assign: " + std::to_string(v.size()) +
                        " values given for a field of " + std::to_string(size()) + " (" +
                        to_string(loc_) + " of " + grid_.describe() + ")");
  if (sy_ == ext_[0] && sz_ == Index(ext_[0]) * ext_[1]) {
    detail::copy_from_host(ctx, data(), space(), v.data(), v.size() * sizeof(T));
    return;
  }
  for (int k = 0; k < ext_[2]; ++k)
    for (int j = 0; j < ext_[1]; ++j)
      detail::copy_from_host(ctx, data() + k * sz_ + j * sy_, space(),
                             v.data() + (Index(k) * ext_[1] + j) * ext_[0], sizeof(T) * ext_[0]);
}

template <class T>
MacVelocity<T>::MacVelocity(const Context& ctx, const Grid& g)
    : MacVelocity(ctx, g, ctx.memory_space()) {}

template <class T>
MacVelocity<T>::MacVelocity(const Context& ctx, const Grid& g, MemorySpace space) {
  g.validate();
  for (int a = 0; a < 3; ++a) {
    if (a < g.dim)
      comp[a] = Field<T>(ctx, g, face_location(a), space);
    else
      comp[a] = Field<T>();
  }
}

template <class T>
MacVelocity<T> MacVelocity<T>::wrap(const Grid& g, std::array<T*, 3> data, MemorySpace space) {
  MacVelocity m;
  for (int a = 0; a < g.dim; ++a)
    m.comp[a] = Field<T>::wrap(g, face_location(a), data[a], space);
  return m;
}

template <class T>
CellVector<T>::CellVector(const Context& ctx, const Grid& g) {
  for (int a = 0; a < g.dim; ++a)
    comp[a] = Field<T>(ctx, g, Location::Cell);
}

namespace check {

template <class A, class B>
void same_shape(const Field<A>& a, const char* na, const Field<B>& b, const char* nb) {
  if (a.empty() || b.empty())
    throw ShapeMismatch(std::string(a.empty() ? na : nb) + ": field is empty (not allocated)");
  if (a.location() != b.location() || a.extents() != b.extents() || a.grid() != b.grid())
    throw ShapeMismatch(std::string(na) + " (" + to_string(a.location()) + " of " +
                        a.grid().describe() + ") and " + nb + " (" + to_string(b.location()) +
                        " of " + b.grid().describe() + ") must have the same grid and location");
}

template <class A>
void on_grid(const Field<A>& f, const char* name, const Grid& g, Location loc) {
  if (f.empty()) throw ShapeMismatch(std::string(name) + ": field is empty (not allocated)");
  if (f.location() != loc || f.grid() != g)
    throw ShapeMismatch(std::string(name) + ": expected " + to_string(loc) + " of " + g.describe() +
                        ", got " + to_string(f.location()) + " of " + f.grid().describe());
}

template <class A>
void accessible(const Context& ctx, const Field<A>& f, const char* name) {
  if (f.space() != ctx.memory_space())
    throw InvalidArgument(std::string(name) + ": field is in " + to_string(f.space()) +
                          " memory but the context runs on " + to_string(ctx.device()) +
                          "; create fields with the same context");
}

void positive_dt(double dt, const char* name) {
  if (!(dt > 0) || !std::isfinite(dt))
    throw InvalidArgument(std::string(name) + " = " + std::to_string(dt) +
                          ": the time step must be finite and > 0");
}

#define DFLUID_CHECK_INST(A, B) \
  template void same_shape<A, B>(const Field<A>&, const char*, const Field<B>&, const char*);
DFLUID_CHECK_INST(float, float)
DFLUID_CHECK_INST(double, double)
DFLUID_CHECK_INST(float, std::uint8_t)
DFLUID_CHECK_INST(double, std::uint8_t)
DFLUID_CHECK_INST(std::uint8_t, std::uint8_t)
#undef DFLUID_CHECK_INST
template void on_grid<float>(const Field<float>&, const char*, const Grid&, Location);
template void on_grid<double>(const Field<double>&, const char*, const Grid&, Location);
template void on_grid<std::uint8_t>(const Field<std::uint8_t>&, const char*, const Grid&, Location);
template void accessible<float>(const Context&, const Field<float>&, const char*);
template void accessible<double>(const Context&, const Field<double>&, const char*);
template void accessible<std::uint8_t>(const Context&, const Field<std::uint8_t>&, const char*);

}  // namespace check

template class Field<float>;
template class Field<double>;
template class Field<std::uint8_t>;
template struct MacVelocity<float>;
template struct MacVelocity<double>;
template struct CellVector<float>;
template struct CellVector<double>;

}  // namespace dfluid
