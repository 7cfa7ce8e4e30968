"""Clones the lineage c00000 of a stopped agent's store into c00001 .. c(N-1),
the way the agent would have written them (bench-store.sh, bench-status.sh).
usage: clone-lineage.py STATE-DIR N"""
import os
import sys

state, n = sys.argv[1], int(sys.argv[2])
src = os.path.join(state, "certs", "c00000")
files = {f: open(os.path.join(src, "v1", f), "rb").read() for f in os.listdir(os.path.join(src, "v1"))}
lineage = open(os.path.join(src, "lineage.json")).read()
for i in range(1, n):
    name = "c%05d" % i
    d = os.path.join(state, "certs", name)
    os.makedirs(os.path.join(d, "v1"), mode=0o700)
    for f, data in files.items():
        with open(os.path.join(d, "v1", f), "wb") as fh:
            fh.write(data)
    with open(os.path.join(d, "lineage.json"), "w") as fh:
        fh.write(lineage.replace('"c00000"', '"%s"' % name))
    os.symlink("../certs/%s/v1" % name, os.path.join(state, "live", name))
