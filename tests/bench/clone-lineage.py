"""Clones the lineage c00000 of a stopped agent's store into c00001 .. c(N-1),
the way the agent would have written them (bench-store.sh, bench-status.sh).
With SOURCE and PREFIX: clones SOURCE into PREFIX00001 .. PREFIX(N-1) (bench-report.sh).
usage: clone-lineage.py STATE-DIR N [SOURCE PREFIX]"""
import os
import sys

state, n = sys.argv[1], int(sys.argv[2])
source = sys.argv[3] if len(sys.argv) > 4 else "c00000"
prefix = sys.argv[4] if len(sys.argv) > 4 else "c"
src = os.path.join(state, "certs", source)
files = {f: open(os.path.join(src, "v1", f), "rb").read() for f in os.listdir(os.path.join(src, "v1"))}
lineage = open(os.path.join(src, "lineage.json")).read()
for i in range(1, n):
    name = "%s%05d" % (prefix, i)
    d = os.path.join(state, "certs", name)
    os.makedirs(os.path.join(d, "v1"), mode=0o700)
    for f, data in files.items():
        with open(os.path.join(d, "v1", f), "wb") as fh:
            fh.write(data)
    with open(os.path.join(d, "lineage.json"), "w") as fh:
        fh.write(lineage.replace('"%s"' % source, '"%s"' % name))
    os.symlink("../certs/%s/v1" % name, os.path.join(state, "live", name))
