#include "common/optimizer_state_file.hpp"
#include "common/stop_signal.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <filesystem>
#include <sstream>

namespace dfluid::app {
namespace {

std::string history_to_text(const std::vector<HistoryRow>& rows) {
  std::ostringstream s;
  s.precision(17);
  for (const auto& r : rows)
    s << r.iteration << ' ' << r.loss << ' ' << r.grad_norm << ' ' << r.step << ' ' << r.evaluations
      << ' ' << r.seconds << '\n';
  return s.str();
}

std::vector<HistoryRow> history_from_text(const std::string& text) {
  std::vector<HistoryRow> rows;
  std::istringstream in(text);
  HistoryRow r;
  while (in >> r.iteration >> r.loss >> r.grad_norm >> r.step >> r.evaluations >> r.seconds)
    rows.push_back(r);
  return rows;
}

template <class T>
Field<T> host_view(const Grid& g, std::vector<T>& v) {
  return Field<T>::wrap(g, Location::Cell, v.data(), MemorySpace::Host);
}

}  // namespace

template <class T>
void save_state_file(const std::string& path, const Grid& pgrid, const std::string& fingerprint,
                     const SavedRun<T>& run) {
  const std::string tmp = path + ".tmp.h5";
  {
    io::WriterOptions wo;
    wo.xdmf = false;
    io::SnapshotWriter w(tmp, pgrid, wo);
    const OptimizerState<T>& st = run.optimizer;
    w.set_run_attribute("fingerprint", fingerprint);
    w.set_run_attribute("optimizer", to_string(st.kind));
    w.set_run_attribute("iteration", std::int64_t(st.iteration));
    w.set_run_attribute("evaluations", std::int64_t(st.evaluations));
    w.set_run_attribute("cached_loss", st.loss);
    w.set_run_attribute("lbfgs_pairs", std::int64_t(st.lbfgs_s.size()));
    w.set_run_attribute("lbfgs_gamma", st.lbfgs_gamma);
    w.set_run_attribute("adam_steps", std::int64_t(st.adam_steps));
    w.set_run_attribute("seconds", run.seconds);
    w.set_run_attribute("history", history_to_text(run.history));
    // Host copies of every vector, wrapped as fields of the parameter grid.
    std::vector<std::vector<T>> keep;
    std::vector<std::string> names;
    auto add_named = [&](const std::string& name, const std::vector<T>& v) {
      if (v.empty()) return;
      keep.push_back(v);
      names.push_back(name);
    };
    add_named("parameters", run.parameters);
    add_named("cached_point", st.point);
    add_named("cached_gradient", st.gradient);
    for (std::size_t i = 0; i < st.lbfgs_s.size(); ++i) {
      add_named("lbfgs_s_" + std::to_string(i), st.lbfgs_s[i]);
      add_named("lbfgs_y_" + std::to_string(i), st.lbfgs_y[i]);
    }
    add_named("adam_m", st.adam_m);
    add_named("adam_v", st.adam_v);
    std::vector<Field<T>> views;
    for (auto& v : keep)
      views.push_back(host_view(pgrid, v));
    std::vector<io::NamedField> fields;
    for (std::size_t i = 0; i < views.size(); ++i)
      fields.emplace_back(names[i], views[i]);
    w.write(Context::cpu(), 0, 0.0, 1.0, fields);
    w.close();
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw Error("cannot move '" + tmp + "' to '" + path + "': " + ec.message());
}

template <class T>
SavedRun<T> load_state_file(const std::string& path, const Grid& pgrid,
                            const std::string& fingerprint, const OptimizerStateFileKind& kind) {
  if (!std::filesystem::exists(path))
    throw InvalidArgument("--resume: the state file '" + path + "' does not exist");
  std::map<std::string, std::string> attr;
  try {
    for (auto& kv : io::read_run_attributes(path))
      attr[kv.first] = kv.second;
  } catch (const std::exception& e) {
    throw InvalidArgument("--resume: '" + path + "' is not a " + kind.app + " state file (" +
                          e.what() + ")");
  }
  if (attr["fingerprint"].empty())
    throw InvalidArgument("--resume: '" + path + "' is not a " + kind.app +
                          " state file (give the " + kind.file + " of an earlier run)");
  if (attr["fingerprint"] != fingerprint)
    throw InvalidArgument(
        "--resume: '" + path + "' was written for another problem (file: " + attr["fingerprint"] +
        "; this run: " + fingerprint + "); resume with the options of the interrupted run");
  SavedRun<T> run;
  auto read = [&](const std::string& name) {
    Field<T> f = io::read_field<T>(path, 0, name, pgrid);
    return std::vector<T>(f.data(), f.data() + f.size());
  };
  const auto snaps = io::list_snapshots(path);
  if (snaps.empty()) throw InvalidArgument("--resume: '" + path + "' holds no saved state");
  const auto& names = snaps.front().fields;
  auto has = [&](const std::string& n) {
    return std::find(names.begin(), names.end(), n) != names.end();
  };
  run.parameters = read("parameters");
  OptimizerState<T>& st = run.optimizer;
  st.kind = parse_optimizer_kind(attr["optimizer"]);
  st.size = Index(run.parameters.size());
  st.iteration = std::stoll(attr["iteration"]);
  st.evaluations = std::stoll(attr["evaluations"]);
  st.loss = std::stod(attr["cached_loss"]);
  st.lbfgs_gamma = std::stod(attr["lbfgs_gamma"]);
  st.adam_steps = std::stoll(attr["adam_steps"]);
  if (has("cached_point")) st.point = read("cached_point");
  if (has("cached_gradient")) st.gradient = read("cached_gradient");
  const long pairs = std::stol(attr["lbfgs_pairs"]);
  for (long i = 0; i < pairs; ++i) {
    st.lbfgs_s.push_back(read("lbfgs_s_" + std::to_string(i)));
    st.lbfgs_y.push_back(read("lbfgs_y_" + std::to_string(i)));
  }
  if (has("adam_m")) st.adam_m = read("adam_m");
  if (has("adam_v")) st.adam_v = read("adam_v");
  run.history = history_from_text(attr["history"]);
  run.seconds = std::stod(attr["seconds"]);
  return run;
}

template <class T>
bool save_run(const std::string& state_path, const std::string& out, const Grid& pgrid,
              const std::string& fingerprint, const SavedRun<T>& run, bool stopped,
              long long iteration, const char* what) {
  save_state_file(state_path, pgrid, fingerprint, run);
  write_history_csv(join(out, "history.csv"), run.history);
  if (!stopped) return false;
  std::printf(
      "stopped by signal %d after iteration %lld: %s and the history saved to %s\n"
      "continue with: --resume %s (and the same options)\n",
      stop_signal(), iteration, what, state_path.c_str(), state_path.c_str());
  return true;
}

template void save_state_file<float>(const std::string&, const Grid&, const std::string&,
                                     const SavedRun<float>&);
template void save_state_file<double>(const std::string&, const Grid&, const std::string&,
                                      const SavedRun<double>&);
template SavedRun<float> load_state_file<float>(const std::string&, const Grid&, const std::string&,
                                                const OptimizerStateFileKind&);
template SavedRun<double> load_state_file<double>(const std::string&, const Grid&,
                                                  const std::string&,
                                                  const OptimizerStateFileKind&);

template bool save_run<float>(const std::string&, const std::string&, const Grid&,
                              const std::string&, const SavedRun<float>&, bool, long long,
                              const char*);
template bool save_run<double>(const std::string&, const std::string&, const Grid&,
                               const std::string&, const SavedRun<double>&, bool, long long,
                               const char*);

}  // namespace dfluid::app
