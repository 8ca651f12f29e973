#!/usr/bin/env bash
# The action's install step (action.yml): puts zdt-check on PATH.
#   INPUT_INSTALL  source (cargo install from the action's checkout) | pip | none
#   INPUT_VERSION  with pip: the version to pin (empty: the latest)
# Uses GITHUB_ACTION_PATH, RUNNER_TEMP and GITHUB_PATH as GitHub sets them.
set -euo pipefail
how=${INPUT_INSTALL:-source}
root=${RUNNER_TEMP:-/tmp}/zdt-check
case $how in
    source)
        cargo install --locked --quiet --path "${GITHUB_ACTION_PATH:?}" --root "$root"
        echo "$root/bin" >>"${GITHUB_PATH:?}"
        ;;
    pip)
        python3 -m venv "$root"
        spec=zdt-check
        [ -n "${INPUT_VERSION:-}" ] && spec="zdt-check==$INPUT_VERSION"
        "$root/bin/pip" install --quiet "$spec"
        echo "$root/bin" >>"${GITHUB_PATH:?}"
        ;;
    none)
        command -v zdt-check >/dev/null || { echo "::error::install: none, but zdt-check is not on PATH"; exit 2; }
        ;;
    *)
        echo "::error::input install must be source, pip or none, not '$how'"
        exit 2
        ;;
esac
