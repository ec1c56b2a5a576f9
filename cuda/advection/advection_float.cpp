// advect<float> and advect_adjoint<float> for every field kind (advection_launches.hpp).
// One translation unit per precision, so that nvcc builds the two in parallel; forward and
// adjoint stay together because every function template holding a DFLUID_LAMBDA must be
// instantiated in one translation unit only (README, "Development": nvcc's host-side
// lambda wrappers break when the linker merges copies from several units), and the adjoints
// instantiate the forward passes they replay.
#include "advection/advection_launches.hpp"

namespace dfluid {
DFLUID_ADVECTION_INST(float)
DFLUID_ADVECTION_ADJOINT_INST(float)
}  // namespace dfluid
