#!/usr/bin/env bash
# Sets up a Python virtual environment with a pinned MLflow, for the runtime's MLflow tests
# (runtime/tests/mlflow.rs: a real `mlflow server` and the real MLflow Python client).
#
#   scripts/setup-mlflow.sh [DIR]                  # default DIR: .venv-mlflow/ in the repository root
#   eval "$(scripts/setup-mlflow.sh --env [DIR])"  # set up if needed, then export the env
#
# Idempotent: a venv whose `mlflow` already reports the pinned version is left alone.
# Prints (with --env) `export SFLOW_MLFLOW_PYTHON=DIR/bin/python`: the tests start
# `$SFLOW_MLFLOW_PYTHON -m mlflow server ...` and run steps with that interpreter.
# Needs: python3 with the venv module, and PyPI. Takes a few minutes the first time.
set -euo pipefail

MLFLOW_VERSION=3.17.2

emit_env=0
if [[ "${1:-}" == "--env" ]]; then
  emit_env=1
  shift
fi
case "${1:-}" in
  -h | --help)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$repo_root/.venv-mlflow}"
# shellcheck source=lib/pinned-venv.sh
source "$repo_root/scripts/lib/pinned-venv.sh"
pinned_venv setup-mlflow mlflow "$MLFLOW_VERSION" "$dir"

if ((emit_env)); then
  echo "export SFLOW_MLFLOW_PYTHON=$dir/bin/python"
fi
