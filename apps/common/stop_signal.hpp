// Graceful stop on Ctrl-C (SIGINT) or SIGTERM: the first signal only sets a flag that the
// optimization loop polls between iterations (it then finishes the iteration, writes what it
// found so far and exits with kStoppedExitCode); a second signal ends the process at once
// (the default action), for a user who does not want to wait.
#pragma once

namespace dfluid::app {

inline constexpr int kStoppedExitCode = 130;

void install_stop_handlers();
bool stop_requested();
/// The signal that asked to stop (0: none).
int stop_signal();
/// For tests: behave as if `sig` had arrived.
void request_stop(int sig);

/// The exit code of a run that has written all its outputs: 0, or kStoppedExitCode when a
/// signal arrived meanwhile (the write in progress was finished first; one line on stderr
/// says so), as the README promises for every SIGINT/SIGTERM.
int exit_code_after_outputs(const char* app_name);

}  // namespace dfluid::app
