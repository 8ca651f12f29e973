#!/usr/bin/env bash
# The action's run step (action.yml): runs the scenarios with every report into
# INPUT_REPORTS_DIR, appends the Markdown summary to $GITHUB_STEP_SUMMARY, and
# sets the step outputs exit-code and result in $GITHUB_OUTPUT. It exits 0 even
# when a run failed (the reports are uploaded next); the gate step fails the job.
#   INPUT_SCENARIOS    scenario files, separated by spaces or new lines
#   INPUT_ARGS         more arguments for `zdt-check run`
#   INPUT_REPORTS_DIR  where the reports go (default zdt-reports)
set -uo pipefail
out=${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set}
summary=${GITHUB_STEP_SUMMARY:?GITHUB_STEP_SUMMARY is not set}
dir=${INPUT_REPORTS_DIR:-zdt-reports}
read -r -d '' -a scenarios <<<"${INPUT_SCENARIOS:-}"
if [ "${#scenarios[@]}" = 0 ]; then
    echo "::error::input scenarios is empty: name at least one scenario file"
    printf 'exit-code=2\nresult=ERROR\n' >>"$out"
    exit 0
fi
read -r -d '' -a extra <<<"${INPUT_ARGS:-}"
mkdir -p "$dir"
zdt-check run "${scenarios[@]}" --no-progress \
    --junit "$dir/junit.xml" --html "$dir/report.html" --json "$dir/report.json" \
    --markdown "$dir/summary.md" "${extra[@]}"
code=$?
if [ -s "$dir/summary.md" ]; then
    cat "$dir/summary.md" >>"$summary"
else
    # Bad input stops zdt-check before any report (exit 2): say so in the summary.
    printf '## zdt-check: ERROR\n\n`zdt-check run` exited %s before writing a report; see the step log.\n' "$code" >>"$summary"
fi
case $code in 0) result=PASS ;; 1) result=FAIL ;; *) result=ERROR ;; esac
printf 'exit-code=%s\nresult=%s\n' "$code" "$result" >>"$out"
echo "zdt-check: $result (exit $code); reports in $dir"
