#!/usr/bin/python3
"""Every piece of advice names a certctl command that exists (issue 20, item 3).

Reads the string literals of agent/, common/ and ctl/ (adjacent literals joined
as the compiler joins them; comments are not messages) and finds the advice
they hold: 'certctl ...' in single quotes, backquotes or escaped double quotes,
"(certctl ...)" in parentheses, and prose ("see certctl ca list", "run certctl
deploy NAME") up to the end of the clause.  Each must name a command the built certctl
knows (certctl --json help), a subcommand its usage lists (ca add, trust show,
...), and only --options its usage or help text lists (or a global one).

usage: advice.py SOURCE_DIR CERTCTL
"""
import json
import os
import re
import subprocess
import sys

# Advice known to be wrong today, fixed by another change of issue 20: "file: advice".
# Remove an entry once its fix is merged (a listed entry that is gone fails too).
KNOWN_WRONG = set()

GLOBAL_OPTIONS = {"--json", "--socket", "--help", "-h", "--version"}
QUOTED = re.compile(r"'certctl\s+([^'\n]*)'|`certctl\s+([^`\n]*)`|\"certctl\s+([^\"\n]*)\""
                    r"|\(certctl\s+([^()\n]*)\)"
                    # Prose: "see certctl ca list", "run certctl deploy %s; ...".
                    r"|\b(?:see|use|run|with|try|then)\s+certctl\s+([^;:,.()'\"\n]*)")
OPTION = re.compile(r"--[a-z0-9][a-z0-9-]*")


def literals(text):
    """The string literals of C source text, adjacent ones joined, comments skipped."""
    out, i, n = [], 0, len(text)
    current, last_end = None, -1
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            i = text.find("*/", i + 2)
            i = n if i < 0 else i + 2
        elif c == "'":
            j = i + 1
            while j < n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            i = j + 1
        elif c == '"':
            j, buf = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    e = text[j + 1]
                    buf.append({"n": "\n", "t": "\t", "\n": ""}.get(e, e))
                    j += 2
                else:
                    buf.append(text[j])
                    j += 1
            s = "".join(buf)
            # Joined with the previous literal when only blanks (and line splices) lie between.
            if current is not None and text[last_end:i].replace("\\\n", "").strip() == "":
                current += s
            else:
                if current is not None:
                    out.append(current)
                current = s
            i = last_end = j + 1
        else:
            i += 1
    if current is not None:
        out.append(current)
    return out


def advice_in(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    for lit in literals(text):
        # The escaped form \"certctl ...\" arrives as "certctl ..." after decoding.
        for m in QUOTED.finditer(lit):
            yield next(g for g in m.groups() if g is not None).strip()


def commands(certctl):
    out = subprocess.run([certctl, "--json", "help"], capture_output=True, text=True,
                         check=True).stdout
    table = {}
    for c in json.loads(out)["commands"]:
        usage = c["usage"]
        subs = set()
        for alt in usage.split("|"):
            words = alt.split()
            if words and re.fullmatch(r"[a-z]+", words[0]):
                subs.add(words[0])
        # Options with a value or a flag, as usage and help name them.
        opts = set(OPTION.findall(usage + " " + c["options"])) | GLOBAL_OPTIONS
        table[c["name"]] = (subs, opts)
    return table


def problems_of(advice, table):
    words = advice.replace("[", " ").replace("]", " ").replace("|", " ").split()
    if not words:
        return ["names no command"]
    name = words[0]
    if name.startswith("-"):
        # 'certctl --json ...': global options first.
        rest = [w for w in words if not w.startswith("-")]
        if not rest:
            return []
        name = rest[0]
        words = words[words.index(name):]
    if re.fullmatch(r"[A-Z]+", name):
        return []  # "certctl COMMAND --help": a placeholder for any command
    if name not in table:
        return ["'%s' is not a certctl command" % name]
    subs, opts = table[name]
    found = []
    if subs and len(words) > 1 and not words[1].startswith("-"):
        if re.fullmatch(r"[a-z]+", words[1]) and words[1] not in subs:
            found.append("'%s %s': no such subcommand (%s)" %
                         (name, words[1], ", ".join(sorted(subs))))
    for w in words[1:]:
        m = OPTION.match(w)
        if m and m.group(0) not in opts:
            found.append("'%s' does not take %s" % (name, m.group(0)))
    return found


# The checker checks: advice it must refuse.
SELF_TEST = ["frobnicate", "renew NAME --agree-tos", "ca frob NAME", "trust add FILE --bogus"]


def main():
    top, certctl = sys.argv[1], sys.argv[2]
    table = commands(certctl)
    failures, seen_known, count = [], set(), 0
    for advice in SELF_TEST:
        if not problems_of(advice, table):
            failures.append("self test: 'certctl %s' passed the check" % advice)
    for area in ("agent", "common", "ctl"):
        for d, _, names in os.walk(os.path.join(top, area)):
            for n in sorted(names):
                if not n.endswith((".c", ".h")):
                    continue
                path = os.path.join(d, n)
                rel = os.path.relpath(path, top)
                for advice in advice_in(path):
                    count += 1
                    problems = problems_of(advice, table)
                    key = "%s: %s" % (rel, advice)
                    if key in KNOWN_WRONG:
                        seen_known.add(key)
                        if not problems:
                            failures.append("%s: fixed, remove it from KNOWN_WRONG" % key)
                        continue
                    for p in problems:
                        failures.append("%s: 'certctl %s': %s" % (rel, advice, p))
    for key in sorted(KNOWN_WRONG - seen_known):
        failures.append("%s: gone, remove it from KNOWN_WRONG" % key)
    for f in failures:
        print("FAIL: " + f)
    print("%d pieces of advice checked, %d problems" % (count, len(failures)))
    return 1 if failures or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
