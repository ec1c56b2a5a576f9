#include "common/stop_signal.hpp"

#include <csignal>
#include <cstdio>

namespace dfluid::app {
namespace {

volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_stop_signal(int sig) {
  g_signal = sig;
  // A second Ctrl-C kills the process the usual way.
  std::signal(sig, SIG_DFL);
}

}  // namespace

void install_stop_handlers() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

bool stop_requested() {
  return g_signal != 0;
}
int stop_signal() {
  return int(g_signal);
}
void request_stop(int sig) {
  g_signal = sig;
}

int exit_code_after_outputs(const char* app_name) {
  if (!stop_requested()) return 0;
  std::fprintf(stderr,
               "%s: stopped by signal %d while writing the outputs; they were completed first\n",
               app_name, stop_signal());
  return kStoppedExitCode;
}

}  // namespace dfluid::app
