// The --resume state file of the gradient-descent apps (dfluid-burgers, dfluid-plume): one
// JSON object with
//   format, format_version  which app wrote it ("dfluid-burgers-state", version 1);
//   the settings            option values a resumed run must share (precision, steps, ...),
//                           either as top-level keys or in an object under one key;
//   next_iteration          the iteration whose loss is not yet in the history;
//   history                 the rows before it, each [iteration, loss, grad_norm, step,
//                           evaluations, seconds];
//   the app's own keys      its current point (u0, initial velocities), the learning rate.
// Numbers are written with round-trip precision (a float is an exact double), so a resumed
// run reads back the same bits and continues bitwise identically to an uninterrupted one.
// dfluid-control keeps optimizer state too and has its own HDF5 state file.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "common/output.hpp"

namespace dfluid::app {

/// History rows as a JSON array of [iteration, loss, grad_norm, step, evaluations, seconds].
nlohmann::json history_json(const std::vector<HistoryRow>& rows);
/// The inverse of history_json; throws nlohmann::json exceptions on bad content.
std::vector<HistoryRow> history_from_json(const nlohmann::json& a);

/// Which app's state file, and where its settings are.
struct StateFileKind {
  std::string app;           ///< named in errors: "dfluid-plume"
  std::string format;        ///< the "format" value: "dfluid-plume-state"
  std::string settings_key;  ///< the settings object's key ("problem"); empty: top-level keys
};

/// Where an optimization stands: the point of `next_iteration` is not yet evaluated.
struct RunState {
  int next_iteration = 0;
  std::vector<HistoryRow> history;
};

/// Writes the state file atomically. `settings`: an object keyed by option name without the
/// dashes ("precision", "inflow-edge"), checked by load_run_state; `app_keys`: an object with
/// the app's own keys (its current point), stored at the top level.
void save_run_state(const std::string& path, const StateFileKind& kind,
                    const nlohmann::json& settings, const RunState& state, nlohmann::json app_keys);

/// Reads the app's own keys from a parsed state file into the app's variables. Returns "" when
/// they fit this run, otherwise what does not fit (for the "is inconsistent" error); may throw
/// nlohmann::json exceptions on missing keys or wrong types.
using ReadAppKeys = std::function<std::string(const nlohmann::json& file)>;

/// Reads a state file for --resume. Throws InvalidArgument, each message starting with
/// "--resume: '<path>'", when the file cannot be read or is not valid JSON of `kind`; when a
/// setting differs from `settings` (naming the option and the value the file was written
/// with); when the history does not match next_iteration or `read_app_keys` reports a misfit;
/// when next_iteration lies beyond `iterations` (the run's last iteration).
RunState load_run_state(const std::string& path, const StateFileKind& kind,
                        const nlohmann::json& settings, int iterations,
                        const ReadAppKeys& read_app_keys);

}  // namespace dfluid::app
