// The optimization loop of the gradient-descent apps (dfluid-burgers, dfluid-plume): plain
// gradient descent with a fixed learning rate, a table row per iteration, Ctrl-C handling and
// the state file for --resume. The apps supply the physics (loss, gradient, step) and the
// state file's contents; the loop, its bookkeeping and its files are the same for both.
//
// Iteration k evaluates the loss and gradient at the current point (iteration 0: the start)
// and, unless k is the last, takes a step. Between iterations the loop polls stop_requested()
// (Ctrl-C, or the hidden --stop-after); on a stop it writes state.json, history.csv and
// loss.png and returns kStoppedExitCode, and --resume state.json continues bitwise
// identically to an uninterrupted run.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/cli.hpp"
#include "common/output.hpp"
#include "common/progress.hpp"
#include "common/run_state.hpp"

namespace dfluid::app {

struct DescentOptions {
  int iterations = 0;  ///< the last iteration (the table shows 0..iterations)
  double learning_rate = 0;
  int stop_after = -1;  ///< hidden --stop-after: stop as if Ctrl-C came during it; -1: none
};

/// --iterations, --learning-rate and the hidden --stop-after (defaults: the values in `o`).
void add_descent_options(CLI::App& app, DescentOptions& o);

/// Title and scale of loss.png.
struct LossPlot {
  std::string title;
  bool log_scale = false;
};

/// history.csv and loss.png in `dir`.
void write_history_files(const std::string& dir, const std::vector<HistoryRow>& history,
                         const LossPlot& plot);

/// What the loop shows and where it writes.
struct DescentRun {
  std::string name;            ///< the app, for the stop message
  std::string output;          ///< folder of state.json, history.csv, loss.png
  std::string resume;          ///< the --resume file, or empty
  std::string progress_label;  ///< the bar's label
  Progress::Mode progress_mode = Progress::Mode::Auto;
  std::string banner;        ///< first line of the log (the app and its setup)
  std::string table_header;  ///< the line above the rows
  LossPlot plot;
};

/// name, output and resume from the arguments, progress_mode from common.progress; the app
/// fills in the rest.
DescentRun descent_run(const std::string& name, const std::string& output,
                       const CommonOptions& common);

/// The app's part of the loop.
struct DescentSteps {
  /// Loss and gradient at the current point: sets row.loss, grad_norm and evaluations and
  /// keeps the gradient for step().
  std::function<void(HistoryRow& row)> evaluate;
  /// current point -= learning rate * gradient.
  std::function<void()> step;
  /// Writes the state file at `path`: the current point, whose loss is not in `state.history`.
  std::function<void(const std::string& path, const RunState& state)> save_state;
  /// The table line of a row, and the status shown after the progress bar.
  std::function<std::string(const HistoryRow& row)> format_row;
  std::function<std::string(const HistoryRow& row)> status;
};

/// Runs iterations `history.size()`..o.iterations, appending a row each, from a fresh start
/// or a loaded state. Returns 0 after the last iteration; state.json then holds its point
/// (with the history before it, so that --resume with more iterations continues the same
/// run). Returns kStoppedExitCode after a stop. Either way state.json, history.csv and
/// loss.png are written. Throws NonFiniteValue when a loss or gradient is not finite.
int run_descent(const DescentOptions& o, const DescentRun& run, const DescentSteps& steps,
                std::vector<HistoryRow>& history);

/// The losses of `history` at the iterations of `published` (iteration → published loss) that
/// it reached, as [{iteration, loss, published}]; `print(iteration, loss, published)` shows
/// each.
nlohmann::json compare_with_published(const std::vector<HistoryRow>& history,
                                      const std::map<int, double>& published,
                                      const std::function<void(int, double, double)>& print);

}  // namespace dfluid::app
