#include "common/cli.hpp"

#include <cstdio>
#include <exception>

#include "dfluid/error.hpp"

namespace dfluid::app {

void add_common_options(CLI::App& app, CommonOptions& o, CommonOptionSet set) {
  app.option_defaults()->always_capture_default();
  app.set_config("--config", "", "read options from a TOML or INI file (keys = long option names)");
  app.add_option("--device", o.device, "where to run: auto (a CUDA GPU when present), cuda, cpu")
      ->check(CLI::IsMember({"auto", "cuda", "cpu"}));
  app.add_option("--precision", o.precision, "floating-point precision of the simulation")
      ->check(CLI::IsMember({"float", "double"}));
  if (set == CommonOptionSet::DeviceOnly) return;
  app.add_option("--output", o.output, "output folder (created when missing)");
  app.add_option("--seed", o.seed, "seed of the random numbers the run uses");
  app.add_option("--progress", o.progress,
                 "progress display: auto (a bar on a terminal, lines otherwise), bar, lines, none")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}));
  if (set == CommonOptionSet::All)
    app.add_option("--resume", o.resume,
                   "continue from the state file of an earlier run (written at the end or on "
                   "Ctrl-C)");
}

CLI::Option* add_stop_after_option(CLI::App& app, int& n, const std::string& meaning) {
  return app.add_option("--stop-after", n, meaning)->group("");  // group "": hidden
}

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, const char* name) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::fprintf(stderr, "%s: %s (see --help)\n", name, e.what());
    return 2;
  }
  return std::nullopt;
}

int run_guarded(const char* name, const std::function<int()>& body) {
  try {
    return body();
  } catch (const InvalidArgument& e) {
    std::fprintf(stderr, "%s: error: %s\n", name, e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", name, e.what());
    return 1;
  }
}

Context make_context(const CommonOptions& o) {
  return Context::create(parse_device(o.device));
}

}  // namespace dfluid::app
