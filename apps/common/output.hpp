// Output files of the apps. Every file is written to "<path>.tmp" and renamed into place, so
// an interrupted or failed run never leaves a half-written file under the final name.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace dfluid::app {

/// Whether prepare_output_dir locks the folder.
enum class OutputLock {
  Lock,   ///< the run's --output folder: one run at a time
  Inside  ///< a subfolder of a folder this run has locked already
};

/// Creates `dir` (and parents) when missing and, for OutputLock::Lock, takes an advisory lock
/// on it (flock on "<dir>/.dfluid-lock", held until the process ends), so that a second run
/// into the same folder is refused before it writes anything. Throws InvalidArgument naming
/// the folder when it cannot be created, is not a writable folder, or is locked by another
/// run. Returns dir.
std::string prepare_output_dir(const std::string& dir, OutputLock lock = OutputLock::Lock);

/// Removes the folders that prepare_output_dir created in this process when they hold nothing
/// but the lock file: a run refused by its own checks leaves no empty folder behind. Called
/// by run_guarded when the run fails.
void remove_unused_output_dir();

/// "<dir>/<name>".
std::string join(const std::string& dir, const std::string& name);

/// Writes `content` to `path` atomically (temporary file, then rename); throws dfluid::Error
/// naming the path on failure.
void write_file_atomic(const std::string& path, const std::string& content);

/// Pretty-printed JSON, atomically.
void write_json(const std::string& path, const nlohmann::json& j);

/// One row per optimizer iteration (iteration 0 = the initial evaluation).
struct HistoryRow {
  int iteration = 0;
  double loss = 0;
  double grad_norm = 0;
  double step = 0;      ///< step size taken (0 for iteration 0)
  int evaluations = 0;  ///< loss/gradient evaluations in the iteration
  double seconds = 0;   ///< wall time of the iteration
};

/// CSV with a header line: iteration,loss,grad_norm,step,evaluations,seconds.
void write_history_csv(const std::string& path, const std::vector<HistoryRow>& rows);
}  // namespace dfluid::app
