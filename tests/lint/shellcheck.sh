#!/bin/bash
# lint.shellcheck: shellcheck (warning level and above) over every shell script of the tree:
# the tracked *.sh, CI's .ci/run and the DEB's maintainer scripts.  Sourced files are
# followed (-x) from each script's own directory, so a variable a library sets for its
# callers counts as used.  Usage: shellcheck.sh SOURCE-DIR
set -euo pipefail
cd "$1"
if ! command -v shellcheck >/dev/null; then
    echo "lint.shellcheck: shellcheck is missing (packaging/install-deps.sh installs it)"
    exit 1
fi
files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    while IFS= read -r -d '' f; do files+=("$f"); done < <(git ls-files -z -- '*.sh')
else
    # A source tree without git (a release tarball): every *.sh but build trees'.
    while IFS= read -r -d '' f; do files+=("$f"); done < <(find . -name '*.sh' ! -path './build*' -print0)
fi
files+=(.ci/run packaging/deb/preinst packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm
    packaging/bash-completion/certctl)
# A file with neither a shebang nor a "shellcheck shell=" directive is a library that bash
# scripts source (packaging/windows/deps.sh, whose hash keys the Windows dependency cache,
# so it is not edited for this): checked as bash.
scripts=() libs=()
for f in "${files[@]}"; do
    if head -n 1 "$f" | grep -q '^#!' || grep -q '^# shellcheck shell=' "$f"; then
        scripts+=("$f")
    else
        libs+=("$f")
    fi
done
rc=0
# Two at a time: the files are independent and a whole run takes a minute on one core.
printf '%s\0' "${scripts[@]}" | xargs -0 -n 8 -P 2 shellcheck -x -P SCRIPTDIR -S warning || rc=1
if [ ${#libs[@]} -gt 0 ]; then
    shellcheck -x -P SCRIPTDIR -S warning -s bash "${libs[@]}" || rc=1
fi
if [ "$rc" -eq 0 ]; then
    echo "lint.shellcheck: ${#files[@]} scripts, no finding at warning level or above"
else
    echo "lint.shellcheck: findings above (fix them, or disable one with a reason on the line before)"
fi
exit "$rc"
