#!/usr/bin/env python3
"""Part of docs.man: every key of the configuration table (common/config.c) has an
entry of its own in certagent.json(5) (a .TP paragraph naming it, with "reload" or
"restart" as the table says) and a row in docs/configuration.md with the same reload
column; neither names a key the table does not have.

usage: docs-keys.py SRCDIR"""
import re
import sys

src = sys.argv[1]
cfg = open(f"{src}/common/config.c", encoding="utf-8").read()
table = {}
# Each entry: {"name", KEY_TYPE, OFF(field), min, max, values, default, reloadable, sensitive, doc}
for m in re.finditer(r'\{"(\w+)", KEY_\w+, OFF\(\w+\), [^,]+, [^,]+, \w+,\s*(?:"[^"]*"|NULL),'
                     r'\s*([01]),\s*([01]),', cfg):
    table[m.group(1)] = m.group(2) == "1"
problems = []
if len(table) < 30:
    problems.append(f"common/config.c: found only {len(table)} keys; the parser needs updating")

man = open(f"{src}/packaging/man/certagent.json.5", encoding="utf-8").read()
keys_section = man.split(".SH KEYS", 1)[-1].split("\n.SH ", 1)[0]
seen = {}
lines = keys_section.split("\n")
for i, line in enumerate(lines):
    m = re.match(r'^\.BR (.*)$', line)
    if not m or (i > 0 and lines[i - 1] != ".TP"):
        k = re.match(r'^\.BR (\w+) (", " \w+ )*"\s*\(', line)
        if k and k.group(1) in table:
            problems.append(f"certagent.json.5: '{line}' does not start a .TP entry")
        continue
    tag = m.group(1)
    names = re.findall(r'(?:^|", " )(\w+)', tag)
    marker = re.search(r'\(([^)]*)\)"\s*$', tag)
    if not marker:
        problems.append(f"certagent.json.5: entry '{tag}' has no (type, reload|restart)")
        continue
    words = marker.group(1)
    reload = "reload" in words.split(", ")[-1]
    restart = "restart" in words.split(", ")[-1]
    for n in names:
        seen[n] = (reload, restart)
for k, r in table.items():
    if k not in seen:
        problems.append(f"certagent.json.5: no entry for the key '{k}'")
    elif seen[k] != (r, not r):
        problems.append(f"certagent.json.5: '{k}' must be marked {'reload' if r else 'restart'}")
for k in seen:
    if k not in table:
        problems.append(f"certagent.json.5: '{k}' is not a key of common/config.c")

doc = open(f"{src}/docs/configuration.md", encoding="utf-8").read()
rows = {}
for m in re.finditer(r'^\| `(\w+)` \|[^|\n]*\|(?:[^|\n]|\\\|)*\| (yes|no) \|', doc, re.M):
    rows[m.group(1)] = m.group(2) == "yes"
in_table = re.search(r'^\| key \| type \| default \| reload \| meaning \|\n\|(---\|)+\n((\|.*\n)+)',
                     doc, re.M)
if in_table is None:
    problems.append("docs/configuration.md: no key table")
else:
    table_keys = re.findall(r'^\| `(\w+)` \|', in_table.group(2), re.M)
    for k in table:
        if k not in table_keys:
            problems.append(f"docs/configuration.md: the key table (one block, no blank line) "
                            f"has no row for '{k}'")
for k, r in table.items():
    if k in rows and rows[k] != r:
        problems.append(f"docs/configuration.md: '{k}' must say reload {'yes' if r else 'no'}")
for p in problems:
    print("FAIL: " + p)
print(f"docs keys: {len(table)} keys checked, {len(problems)} problems")
sys.exit(1 if problems else 0)
