#!/usr/bin/env python3
"""Fails when a file of the repository refers to a path outside the repository.

dfluid must work from a fresh clone placed in any folder with nothing beside it, so no build
step, test, app, script, comment or document may read or name a path above the repository
root. Usage: check_self_contained.py REPO_ROOT

Checked in every tracked text file (git ls-files; the whole tree, less build folders, where
there is no git checkout):
  - paths that climb out of the root: a folder variable of CMake or the shell followed by
    more "/.." steps than lie between the root and that folder, and relative paths ("../x")
    resolved from the file's folder;
  - names of folders that sit beside the repository on the machines it was written on.
Prints one line per finding (file:line: the text and why) and exits 1 if there are any.
"""
import os
import re
import subprocess
import sys

# Spelled in pieces so that this file does not match itself.
SIBLING_NAMES = ["shared" + "/reference", ".." + "/shared", "/" + "work/"]

# A variable (or shell expression) that names a folder, followed by one or more "/..".
ANCHORED = re.compile(
    r'(\$\{(?P<var>PROJECT_SOURCE_DIR|CMAKE_SOURCE_DIR|CMAKE_CURRENT_SOURCE_DIR|'
    r'CMAKE_CURRENT_LIST_DIR|PROJECT_BINARY_DIR|CMAKE_BINARY_DIR)\}'
    r'|\$\(dirname "\$(?:0|\{BASH_SOURCE\[0\]\})"\))'
    r'(?P<ups>(?:/\.\.)+)(?![\w.])')
# A relative path starting with ../ (not part of a longer path).
RELATIVE = re.compile(r'(?:^|(?<=[\s"\'(=:,\[<`]))(?P<ups>(?:\.\./)+|\.\.(?=["\'\s)]|$))')

SKIP_DIRS = {".git", "__pycache__", "gpu-carry"}


def tracked_files(root):
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"], capture_output=True,
                             check=True).stdout.decode()
        files = [f for f in out.split("\0") if f]
        if files:
            return files
    except (OSError, subprocess.CalledProcessError):
        pass
    files = []
    for d, dirs, names in os.walk(root):
        dirs[:] = [x for x in dirs if x not in SKIP_DIRS and not x.startswith(("build", "out"))]
        files += [os.path.relpath(os.path.join(d, n), root) for n in names]
    return files


def escapes(start_depth, ups):
    """True when `ups` steps up from a folder `start_depth` levels below the root leave it."""
    return ups > start_depth


def check_file(root, rel):
    path = os.path.join(root, rel)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return ["%s: cannot read (%s)" % (rel, e)]
    if b"\0" in data:
        return []  # binary
    text = data.decode("utf-8", errors="replace")
    depth = rel.count("/")  # folders between the root and the file
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        where = "%s:%d" % (rel, n)
        for name in SIBLING_NAMES:
            if name in line:
                found.append("%s: names '%s', a folder outside the repository" % (where, name))
        for m in ANCHORED.finditer(line):
            ups = m.group("ups").count("..")
            var = m.group("var")
            start = 0 if var in ("PROJECT_SOURCE_DIR", "CMAKE_SOURCE_DIR") else depth
            if var in ("PROJECT_BINARY_DIR", "CMAKE_BINARY_DIR") or escapes(start, ups):
                found.append("%s: '%s' leaves the repository" % (where, m.group(0)))
        for m in RELATIVE.finditer(line):
            ups = m.group("ups").count("..")
            if escapes(depth, ups):
                found.append("%s: '%s' climbs above the repository root from %s" %
                             (where, m.group("ups"), os.path.dirname(rel) or "the root"))
    return found


def self_test():
    """The checker finds what it is for: planted references in a scratch tree (no git)."""
    import tempfile
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "apps", "x"))
        up = "." + "."  # spelled in pieces so that this file does not match itself
        planted = {
            "CMakeLists.txt": "set(D ${PROJECT_SOURCE_DIR}/%s/data)\n" % up,
            "apps/x/CMakeLists.txt":
                "set(D ${CMAKE_CURRENT_SOURCE_DIR}/%s/%s/%s)\nset(E %s/%s/%s/y)\n" % ((up,) * 6),
            "apps/x/a.cpp": "// data in " + SIBLING_NAMES[0] + "/README.md\n",
            ".ci_run": 'cd "$(dirname "$0")/%s/%s"\n' % (up, up),
        }
        clean = {"apps/x/ok.cmake":
                     "set(D ${CMAKE_CURRENT_SOURCE_DIR}/%s/%s)\ninclude(%s/y)\n" % (up, up, up),
                 "apps/x/run.sh": 'cd "$(dirname "$0")/%s"\n' % up}
        for rel, text in list(planted.items()) + list(clean.items()):
            with open(os.path.join(root, rel), "w") as f:
                f.write(text)
        found = [check_file(root, rel) for rel in sorted(planted)]
        ok = all(found) and not any(check_file(root, rel) for rel in clean)
        counts = {rel: len(check_file(root, rel)) for rel in sorted(planted) + sorted(clean)}
        print("self-test:", counts)
        return 0 if ok and counts["apps/x/CMakeLists.txt"] == 2 else 1


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--self-test":
        return self_test()
    if len(sys.argv) != 2:
        print("usage: check_self_contained.py REPO_ROOT | --self-test", file=sys.stderr)
        return 2
    root = os.path.abspath(sys.argv[1])
    files = tracked_files(root)
    findings = []
    for rel in files:
        findings += check_file(root, rel)
    for f in findings:
        print(f)
    print("%d files checked, %d references outside the repository" % (len(files), len(findings)))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
