// The state file of the L-BFGS apps (dfluid-control, dfluid-drag): everything needed to
// continue an optimization (--resume) bitwise identically — the parameters, the optimizer's state
// (L-BFGS pairs, Adam moments, its cached evaluation), the loss history, and a fingerprint of the
// settings so that a state file of another problem is refused. Stored as a dfluid snapshot file on
// the 1D parameter grid (every vector is a "cell field" of P values), written to a temporary name
// and renamed, so an interrupted write never replaces a good state file with a broken one.
#pragma once

#include <string>
#include <vector>

#include "common/output.hpp"
#include "dfluid/dfluid.hpp"
#include "dfluid/io/hdf5.hpp"

namespace dfluid::app {

template <class T>
struct SavedRun {
  std::vector<T> parameters;
  OptimizerState<T> optimizer;
  std::vector<HistoryRow> history;
  double seconds = 0;  ///< optimization wall time so far
};

/// Which app's state file: named in the errors of load_state_file.
struct OptimizerStateFileKind {
  std::string app;   ///< "dfluid-control"
  std::string file;  ///< the name the app writes it under: "control-state.h5"
};

template <class T>
void save_state_file(const std::string& path, const Grid& pgrid, const std::string& fingerprint,
                     const SavedRun<T>& run);

/// The end of an optimization after `iteration` iterations: writes the state file first
/// (whatever happens next, the run can be continued) and history.csv into `out`. After a stop
/// by a signal, prints where `what` ("controls", "the profile") and the history were saved and
/// how to continue, and returns true: the caller then exits with kStoppedExitCode.
template <class T>
bool save_run(const std::string& state_path, const std::string& out, const Grid& pgrid,
              const std::string& fingerprint, const SavedRun<T>& run, bool stopped,
              long long iteration, const char* what);

/// Reads a state file; throws InvalidArgument naming the file when it cannot be read, holds
/// another precision, or its fingerprint differs from `fingerprint` (another problem).
template <class T>
SavedRun<T> load_state_file(const std::string& path, const Grid& pgrid,
                            const std::string& fingerprint, const OptimizerStateFileKind& kind);

}  // namespace dfluid::app
