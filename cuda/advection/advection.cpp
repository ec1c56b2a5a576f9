// Advection's non-template functions (names of its options, the scatter's workspace size).
// The operators themselves are instantiated in advection_float.cpp and advection_double.cpp
// from advection_launches.hpp.
#include <cstddef>
#include <string>

#include "core/scatter.hpp"
#include "dfluid/advection.hpp"
#include "dfluid/error.hpp"

namespace dfluid {

const char* to_string(Backtrace b) {
  switch (b) {
    case Backtrace::Euler:
      return "euler";
    case Backtrace::RK2:
      return "rk2";
  }
  return "?";
}

const char* to_string(AdvectionScheme s) {
  switch (s) {
    case AdvectionScheme::SemiLagrangian:
      return "semi-lagrangian";
    case AdvectionScheme::MacCormack:
      return "maccormack";
  }
  return "?";
}

Backtrace parse_backtrace(const std::string& s) {
  if (s == "euler") return Backtrace::Euler;
  if (s == "rk2" || s == "midpoint") return Backtrace::RK2;
  throw InvalidArgument("backtrace: unknown value '" + s + "'; use euler or rk2");
}

const char* to_string(Interpolation i) {
  switch (i) {
    case Interpolation::Linear:
      return "linear";
    case Interpolation::Cubic:
      return "cubic";
  }
  return "?";
}

Interpolation parse_interpolation(const std::string& s) {
  if (s == "linear") return Interpolation::Linear;
  if (s == "cubic" || s == "catmull-rom") return Interpolation::Cubic;
  throw InvalidArgument("interpolation: unknown value '" + s + "'; use linear or cubic");
}

AdvectionScheme parse_advection_scheme(const std::string& s) {
  if (s == "semi-lagrangian" || s == "sl" || s == "semilagrangian")
    return AdvectionScheme::SemiLagrangian;
  if (s == "maccormack") return AdvectionScheme::MacCormack;
  throw InvalidArgument("advection scheme: unknown value '" + s +
                        "'; use semi-lagrangian (sl) or maccormack");
}

std::size_t scatter_workspace_bytes(const Context& ctx, std::size_t target_elements) {
  return detail::scatter_uses_fixed_point(ctx) ? detail::kFixedBytesPerElement * target_elements
                                               : 0;
}

}  // namespace dfluid
