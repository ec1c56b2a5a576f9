// The output files of dfluid-plume besides the loop's (state.json, history.csv, loss.png):
// PNG pictures of the smoke and the HDF5 + XDMF snapshots, both on the 32 x 40 domain.
#pragma once

#include <string>
#include <vector>

#include "common/descent.hpp"
#include "plume/plume_problem.hpp"

namespace dfluid::plume {

inline constexpr const char* kAppName = "dfluid-plume";

/// smoke_entry<k>.png (k = 1..4): the smoke after the rollout from rest, after the optimized
/// rollout, and the reference; smoke_overview.png: the optimized smoke of every entry.
/// Returns the file names.
template <class T>
std::vector<std::string> write_pictures(const Context& ctx, const std::string& dir, const Layout& l,
                                        const std::vector<Field<T>>& before,
                                        const std::vector<Field<T>>& after,
                                        const Field<T>& reference);

/// plume.h5 (+ plume.xmf) on the 32 x 40 domain: step 0 holds the optimized initial velocity of
/// every entry (initial_velocity_<k>_x/_y), step N the smoke after the rollout (smoke_<k>) and
/// the reference.
template <class T>
void write_snapshots(const Context& ctx, const std::string& path, const Layout& l,
                     const std::vector<SmokeState<T>>& initial, const std::vector<Field<T>>& after,
                     const Field<T>& reference, const PlumeSettings& s,
                     const app::DescentOptions& d, double loss);

}  // namespace dfluid::plume
