"""The shape ARCHITECTURE.md promises, checked on the sources:

- api/ reaches nothing of store/ or vmm/, even through the headers it
  includes; daemon/ reaches them only through core/;
- inside one folder, no two files call each other (a circle of two);
- no C source file in src/, agent/ or tests/fakes/ (and its fc/) is
  longer than MAX_LINES.

A rough reader of C: function definitions are lines that start with a
name and "(" after a line with their type, calls are the name followed by
"(" or taken as a value.  Good enough for code in this project's style;
exits non-zero and says what is wrong."""
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MAX_LINES = 800
FOLDERS = ["src/api", "src/cli", "src/common", "src/core", "src/daemon",
           "src/guest", "src/net", "src/store", "src/vmm", "agent",
           "tests/fakes", "tests/fakes/fc"]
# who may not reach what, by folder of src/
FORBIDDEN = {"api": {"store", "vmm", "net", "guest"},
             "daemon": {"store", "vmm", "net", "guest"}}


def strip(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return re.sub(r'"(\\.|[^"\\\n])*"', '""', text)


def includes(path):
    """Project headers a file includes, as paths under src/ or its dir."""
    out = []
    with open(path) as f:
        for m in re.finditer(r'^#include "([^"]+)"', f.read(), re.M):
            for base in (os.path.join(ROOT, "src"), os.path.dirname(path)):
                p = os.path.normpath(os.path.join(base, m.group(1)))
                if os.path.exists(p):
                    out.append(p)
                    break
    return out


def reach(path, seen=None):
    seen = set() if seen is None else seen
    for h in includes(path):
        if h not in seen:
            seen.add(h)
            reach(h, seen)
    return seen


def check_includes(errors):
    for folder, banned in FORBIDDEN.items():
        d = os.path.join(ROOT, "src", folder)
        for name in sorted(os.listdir(d)):
            if not name.endswith((".c", ".h")):
                continue
            for h in reach(os.path.join(d, name)):
                rel = os.path.relpath(h, os.path.join(ROOT, "src"))
                if rel.split(os.sep)[0] in banned:
                    errors.append("src/%s/%s reaches %s" % (folder, name, rel))


def check_calls(errors):
    for folder in FOLDERS:
        d = os.path.join(ROOT, folder)
        if not os.path.isdir(d):
            continue
        files = sorted(n for n in os.listdir(d) if n.endswith(".c"))
        text, defs = {}, {}
        for n in files:
            t = strip(open(os.path.join(d, n)).read())
            text[n] = t
            names = set()
            for m in re.finditer(r"^([A-Za-z_][A-Za-z0-9_]*)\(", t, re.M):
                line_start = t.rfind("\n", 0, m.start() - 1) + 1
                if "static" not in t[line_start:m.start()]:
                    names.add(m.group(1))
            defs[n] = names
        calls = {}
        for a in files:
            for b in files:
                if a == b:
                    continue
                used = sorted(f for f in defs[b] if re.search(
                    r"(?<![A-Za-z0-9_])%s\s*\(|[=,(]\s*&?%s\b" % (f, f),
                    text[a]))
                if used:
                    calls[(a, b)] = used
        for (a, b), used in sorted(calls.items()):
            if a < b and (b, a) in calls:
                errors.append("%s: %s and %s call each other (%s / %s)" % (
                    folder, a, b, ", ".join(used[:3]),
                    ", ".join(calls[(b, a)][:3])))


def check_sizes(errors):
    for folder in FOLDERS:
        d = os.path.join(ROOT, folder)
        if not os.path.isdir(d):
            continue
        for n in sorted(os.listdir(d)):
            if n.endswith(".c"):
                with open(os.path.join(d, n)) as f:
                    lines = sum(1 for _ in f)
                if lines > MAX_LINES:
                    errors.append("%s/%s: %d lines (at most %d)" % (
                        folder, n, lines, MAX_LINES))


def main():
    errors = []
    check_includes(errors)
    check_calls(errors)
    check_sizes(errors)
    for e in errors:
        print("layers: " + e)
    if errors:
        sys.exit(1)
    print("layers: ok (includes, calls within folders, file sizes)")


if __name__ == "__main__":
    main()
