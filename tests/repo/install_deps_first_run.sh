#!/usr/bin/env bash
# The first run of the README's commands on a fresh machine: .ci/install-deps finds every
# package missing and installs them. Stand-in dpkg-query (every package missing), apt-get and
# sudo (they log their arguments and, like the real apt-get, chatter on standard output) go
# first on PATH, so this runs on a machine that already has everything, changes nothing, and
# needs no network.
#
# Checks: each `eval "$(bash .ci/install-deps)"` line of .ci/demo and .ci/test, run as those
# scripts run it (set -euo pipefail, from the repository root), succeeds; what install-deps
# prints on standard output is shell code only (the messages are on standard error); and
# apt-get was asked to update and then install the packages install-deps lists.
# Usage: install_deps_first_run.sh REPO_ROOT
set -euo pipefail
repo=$(cd "$1" && pwd)
fake=$(mktemp -d)
trap 'rm -rf "$fake"' EXIT
fail() { echo "install_deps_first_run: $*" >&2; exit 1; }

cat >"$fake/dpkg-query" <<'SH'
#!/bin/sh
# Every package is missing.
exit 1
SH
cat >"$fake/apt-get" <<'SH'
#!/bin/sh
echo "apt-get $*" >>"$FAKE_LOG"
echo "Reading package lists... Done"
echo "Setting up something (1.0) ..."
exit 0
SH
cat >"$fake/sudo" <<'SH'
#!/bin/sh
exec "$@"
SH
chmod +x "$fake"/*

for script in .ci/demo .ci/test; do
  line=$(grep -E '^[[:space:]]*eval "\$\(bash \.ci/install-deps\)"' "$repo/$script") ||
    fail "$script does not run .ci/install-deps through eval as expected"
  log="$fake/$(basename "$script").log"
  : >"$log"
  out=$(cd "$repo" && FAKE_LOG=$log PATH="$fake:$PATH" bash -c "set -euo pipefail; $line; echo eval-ok" 2>"$fake/stderr") ||
    fail "$script: '$line' fails on a machine with every package missing: $(head -c 400 "$fake/stderr")"
  [ "$out" = "eval-ok" ] || fail "$script: unexpected output after eval: $out"
  grep -q "dfluid: installing" "$fake/stderr" || fail "$script: no 'installing' message on standard error"
  grep -q "^apt-get update" "$log" || fail "$script: apt-get update was not run"
  grep -q "^apt-get install .*libhdf5-dev" "$log" || fail "$script: apt-get install was not asked for libhdf5-dev"
done

# What install-deps prints is shell code: nothing, or export lines.
stdout=$(cd "$repo" && FAKE_LOG=/dev/null PATH="$fake:$PATH" bash .ci/install-deps 2>/dev/null)
if [ -n "$stdout" ]; then
  bash -n <<<"$stdout" || fail "install-deps printed something that is not shell code: $(head -c 200 <<<"$stdout")"
  if grep -vqE '^export [A-Za-z_][A-Za-z0-9_]*=' <<<"$stdout"; then
    fail "install-deps printed more than export lines: $(head -c 200 <<<"$stdout")"
  fi
fi
echo "install_deps_first_run: .ci/demo and .ci/test pass their first run (every package missing)"
