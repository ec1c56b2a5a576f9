#include "common/descent.hpp"

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>

#include "common/image.hpp"
#include "common/stop_signal.hpp"
#include "dfluid/error.hpp"

namespace dfluid::app {

void add_descent_options(CLI::App& app, DescentOptions& o) {
  app.add_option("--iterations", o.iterations,
                 "gradient-descent iterations (the table shows iterations 0..N)")
      ->check(CLI::Range(0, 1000000));
  app.add_option("--learning-rate", o.learning_rate, "gradient-descent step size")
      ->check(FinitePositive());
  add_stop_after_option(app, o.stop_after, "act as if Ctrl-C came during iteration N")
      ->check(CLI::NonNegativeNumber);
}

void write_history_files(const std::string& dir, const std::vector<HistoryRow>& history,
                         const LossPlot& plot) {
  write_history_csv(join(dir, "history.csv"), history);
  std::vector<double> losses;
  for (const auto& r : history)
    losses.push_back(r.loss);
  write_png(join(dir, "loss.png"), plot_curve(losses, plot.title, plot.log_scale));
}

DescentRun descent_run(const std::string& name, const std::string& output,
                       const CommonOptions& common) {
  DescentRun run;
  run.name = name;
  run.output = output;
  run.resume = common.resume;
  run.progress_mode = Progress::parse_mode(common.progress);
  return run;
}

int run_descent(const DescentOptions& o, const DescentRun& run, const DescentSteps& steps,
                std::vector<HistoryRow>& history) {
  using Clock = std::chrono::steady_clock;
  int it = int(history.size());
  const std::string state_path = join(run.output, "state.json");
  Progress progress(run.progress_label, o.iterations + 1, run.progress_mode);
  progress.log(run.banner);
  if (!run.resume.empty())
    progress.log("resuming at iteration " + std::to_string(it) + " from " + run.resume);
  progress.log(run.table_header);

  while (true) {
    const auto t0 = Clock::now();
    HistoryRow row;
    row.iteration = it;
    steps.evaluate(row);
    row.step = it == 0 ? 0.0 : o.learning_rate;
    row.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!std::isfinite(row.loss) || !std::isfinite(row.grad_norm))
      throw NonFiniteValue("the loss or its gradient is not finite at iteration " +
                           std::to_string(it) + " (try a smaller --learning-rate)");
    history.push_back(row);
    progress.log(steps.format_row(row));
    progress.update(it + 1, steps.status(row));
    // The hidden --stop-after N: a Ctrl-C during iteration N (during the last one, it lands
    // while the outputs are written).
    if (o.stop_after >= 0 && it >= o.stop_after) request_stop(SIGINT);
    if (it == o.iterations) break;
    steps.step();
    ++it;
    if (stop_requested()) {
      progress.finish();
      steps.save_state(state_path, {it, history});
      write_history_files(run.output, history, run.plot);
      std::fprintf(stderr,
                   "%s: stopped after iteration %d; continue with --resume %s (and the same "
                   "options)\n",
                   run.name.c_str(), it - 1, state_path.c_str());
      return kStoppedExitCode;
    }
  }
  progress.finish();
  // The point of the last row, so that --resume with more iterations continues the same run.
  steps.save_state(state_path, {it, {history.begin(), history.end() - 1}});
  write_history_files(run.output, history, run.plot);
  return 0;
}

nlohmann::json compare_with_published(const std::vector<HistoryRow>& history,
                                      const std::map<int, double>& published,
                                      const std::function<void(int, double, double)>& print) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& [k, value] : published) {
    if (k >= int(history.size())) continue;
    rows.push_back({{"iteration", k}, {"loss", history[k].loss}, {"published", value}});
    print(k, history[k].loss, value);
  }
  return rows;
}

}  // namespace dfluid::app
