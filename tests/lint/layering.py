#!/usr/bin/python3
"""The agent's layers, one way (docs/architecture.md).

Reads every #include "..." of agent/, common/ and ctl/ and fails on an
include that goes up a layer: a file may include headers of its own layer
and of lower ones.  common/ is below everything and includes only itself;
ctl/ includes common/ only.  The debts still to pay are listed in
tests/lint/layering-debts.txt: a new upward include fails, and so does a
listed one that is gone (the list must shrink with the code).

usage: layering.py SOURCE_DIR
"""
import os
import re
import sys

# Lowest first.  unix/ and win/ are the platform layer, beside base; ipc/ (the
# op table and its handlers) is one subsystem with agent.c and main.c (the
# agent's top folder, "" here): they drive everything below.
AGENT_LAYERS = ["base", "store", "trust", "deploy", "acme", "fleet", "renew", "report",
                "notify", "web", "ipc"]
RANK = {name: i + 1 for i, name in enumerate(AGENT_LAYERS)}
RANK.update({"unix": RANK["base"], "win": RANK["base"], "": RANK["ipc"]})
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(rel):
    """(area, layer name) of a path relative to the source dir."""
    parts = rel.split("/")
    if parts[0] == "agent":
        return "agent", parts[1] if len(parts) > 2 else ""
    return parts[0], parts[0]


def main():
    top = sys.argv[1]
    files = []
    for area in ("agent", "common", "ctl"):
        for d, _, names in os.walk(os.path.join(top, area)):
            files += [os.path.relpath(os.path.join(d, n), top) for n in names
                      if n.endswith((".c", ".h"))]
    headers = {}
    for rel in files:
        if rel.endswith(".h"):
            headers.setdefault(os.path.basename(rel), []).append(rel)
    dup = {h: p for h, p in headers.items() if len(p) > 1 and
           len({layer_of(x) for x in p}) > 1}
    problems = []
    for h, paths in sorted(dup.items()):
        problems.append("header %s exists in several layers: %s" % (h, ", ".join(paths)))

    found = set()
    for rel in sorted(files):
        area, layer = layer_of(rel)
        with open(os.path.join(top, rel), encoding="utf-8", errors="replace") as f:
            text = f.read()
        for inc in INCLUDE.findall(text):
            base = os.path.basename(inc)
            if base not in headers:
                continue  # generated (eventlog.h) or a system header in quotes
            target = headers[base][0]
            tarea, tlayer = layer_of(target)
            if tarea == "common":
                continue  # below everything
            if area in ("common", "ctl", "installer") and tarea != area:
                problems.append("%s includes %s: %s/ may include only common/ and itself"
                                % (rel, target, area))
                continue
            if area == "agent" and RANK[tlayer] > RANK[layer]:
                found.add("%s -> %s" % (rel, target))

    debts_path = os.path.join(top, "tests/lint/layering-debts.txt")
    debts = set()
    with open(debts_path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                debts.add(" ".join(line.split()))
    for v in sorted(found - debts):
        src, dst = v.split(" -> ")
        problems.append("%s includes %s, a higher layer (%s above %s): publish an event or "
                        "pass the input down instead (docs/architecture.md)"
                        % (src, dst, layer_of(dst)[1] or "the agent", layer_of(src)[1] or "the agent"))
    for v in sorted(debts - found):
        problems.append("%s is listed in tests/lint/layering-debts.txt but no longer happens: "
                        "remove the line" % v)
    for p in problems:
        print("layering: " + p)
    print("layering: %d files, %d upward includes left as listed debts, %d problems"
          % (len(files), len(found & debts), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
