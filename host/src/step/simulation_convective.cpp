// The ConvectiveOutflow sides of a Simulation (see BoundaryKind::ConvectiveOutflow): the
// values their faces take in a step, computed from the step's input velocity (and the
// inflow profiles) at its start and written by set_inflow_faces before each projection; and
// the adjoint of that map, which step_adjoint runs after the part adjoints on the cotangent
// take_inflow_gradient gathered from those faces.
#include <string>
#include <vector>

#include "dfluid/projection.hpp"
#include "dfluid/field_ops.hpp"
#include "dfluid/simulation.hpp"

namespace dfluid {

template <class T>
bool Simulation<T>::has_convective_outflow() const {
  for (int a = 0; a < grid_.dim; ++a)
    for (int side = 0; side < 2; ++side)
      if (grid_.boundary[a][side] == BoundaryKind::ConvectiveOutflow) return true;
  return false;
}

template <class T>
ConvectiveOutflowSides<T> Simulation<T>::convective_sides(bool gradient) {
  ConvectiveOutflowSides<T> cs;
  for (int a = 0; a < grid_.dim; ++a)
    for (int side = 0; side < 2; ++side) {
      cs.inflow[a][side] = gradient ? inflow_grad_[a][side].data() : inflow_values_[a][side].data();
      if (grid_.boundary[a][side] != BoundaryKind::ConvectiveOutflow) continue;
      const double uc = vb_.outflow_speed[a][side];
      if (!(uc > 0))
        throw InvalidArgument("Simulation: side " + side_name(a, side) +
                              " is convective-outflow but has no outflow speed; set "
                              "VelocityBoundary::outflow_speed (U_c > 0) with "
                              "set_velocity_boundary");
      cs.courant[a][side] = uc * config_.dt / grid_.dx;
      cs.values[a][side] =
          gradient ? convective_grad_[a][side].data() : convective_values_[a][side].data();
    }
  return cs;
}

template <class T>
void Simulation<T>::convective_outflow_update(const MacVelocity<T>& u) {
  if (has_convective_outflow()) convective_outflow_values(ctx_, u, convective_sides(false));
}

template <class T>
void Simulation<T>::convective_outflow_adjoint(MacVelocity<T>& grad_u, double* acc) {
  if (!has_convective_outflow()) return;
  // The profiles' part of the cotangent goes through inflow_grad_ (free again here), then
  // into acc's inflow slots on the device (no host wait).
  for (int a = 0; a < grid_.dim; ++a)
    for (int side = 0; side < 2; ++side) {
      Buffer<T>& buf = inflow_grad_[a][side];
      if (buf.data()) detail::zero_bytes(ctx_, buf.data(), buf.bytes(), buf.space());
    }
  convective_outflow_values_adjoint(ctx_, convective_sides(true), grad_u);
  for (int a = 0; a < grid_.dim; ++a)
    for (int side = 0; side < 2; ++side) {
      Buffer<T>& buf = convective_grad_[a][side];
      if (buf.data()) detail::zero_bytes(ctx_, buf.data(), buf.bytes(), buf.space());
      const Buffer<T>& ig = inflow_grad_[a][side];
      if (acc && ig.data())
        add_doubles(ctx_, ig.data(), int(ig.size()),
                    acc + VelocityBoundaryGradient::inflow_slot(grid_, a, side));
    }
}

#define DFLUID_SIM_CONVECTIVE_INST(T)                                            \
  template bool Simulation<T>::has_convective_outflow() const;                   \
  template ConvectiveOutflowSides<T> Simulation<T>::convective_sides(bool);      \
  template void Simulation<T>::convective_outflow_update(const MacVelocity<T>&); \
  template void Simulation<T>::convective_outflow_adjoint(MacVelocity<T>&, double*);
DFLUID_SIM_CONVECTIVE_INST(float)
DFLUID_SIM_CONVECTIVE_INST(double)
#undef DFLUID_SIM_CONVECTIVE_INST

}  // namespace dfluid
