#!/usr/bin/env bash
# Zero false verdicts: run every passing scenario and every negative control N
# times and report passes/N. A scenario must be N/N (scenarios/*.toml) or 0/N
# (scenarios/negative/*.toml); anything else is a bug to fix in the strategy,
# the fixture or the verdict, not a threshold to loosen.
#
#   benches/repeat.sh [N=20] [SCENARIO...]      (default: every scenario)
#
# A negative control whose header says "probabilistic" (e.g. haproxy's legacy -sf
# reload) is reported as a detection rate (fails/N), never as a false verdict.
#
# Exit 0 when every scenario gave its expected verdict N times out of N.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${1:-20}; shift || true
BIN=target/release/zdt-check
cargo build --release -q  # always: a stale binary would judge old code
if [ "$#" -gt 0 ]; then files=("$@"); else files=(scenarios/*.toml scenarios/negative/*.toml); fi
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
bad=0
printf '%-48s %-9s %8s  %s\n' scenario expected passes verdict
for f in "${files[@]}"; do
    expect=pass; case "$f" in */negative/*) expect=fail ;; esac
    if [ "$expect" = fail ] && head -n 12 "$f" | grep -qi '^#.*probabilistic'; then expect=rate; fi
    "$BIN" compare --repeat "$N" "$f" --json "$out/r.json" >/dev/null 2>"$out/err" || true
    line=$(python3 - "$out/r.json" "$expect" "$N" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1])); expect = sys.argv[2]; n = int(sys.argv[3])
row = doc["rows"][0]
classes = ", ".join(f"{k} {v}" for k, v in row["failed"].items()) or "0 failed"
if expect == "rate":
    fails = row["runs"] - row["passes"] - row["errors"]
    ok = row["errors"] == 0
    print(f'{row["passes"]}/{n} {"detected in " + str(fails) + "/" + str(n) if ok else "HARNESS ERRORS"} ({classes}; errors {row["errors"]})')
else:
    ok = (row["passes"] == n) if expect == "pass" else (row["passes"] == 0 and row["errors"] == 0)
    print(f'{row["passes"]}/{n} {"ok" if ok else "FALSE VERDICT"} ({classes}; errors {row["errors"]})')
PY
)
    printf '%-48s %-9s %s\n' "$f" "$expect" "$line"
    case "$line" in *"FALSE VERDICT"* | *"HARNESS ERRORS"*) bad=1 ;; esac
done
exit $bad
