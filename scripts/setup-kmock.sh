#!/usr/bin/env bash
# Sets up a Python virtual environment with a pinned `kmock`, the Kubernetes stand-in of the
# stand-in tests (compiler/kube/tests/standin_*.rs): kmock's KubernetesEmulator is a stateful,
# in-memory API server that speaks the real Kubernetes HTTP API on loopback.
# tests/standin/kube_standin.py runs it and fixes its known gaps (docs/kubernetes.md).
#
#   scripts/setup-kmock.sh [DIR]                  # default DIR: .venv-kmock/ in the repository root
#   eval "$(scripts/setup-kmock.sh --env [DIR])"  # set up if needed, then export the env
#
# Idempotent: a venv whose `kmock` already reports the pinned version is left alone.
# Prints (with --env) `export SFLOW_KMOCK_PYTHON=DIR/bin/python`: the tests start
# `$SFLOW_KMOCK_PYTHON tests/standin/kube_standin.py`.
# Needs: python3 (>= 3.10) with the venv module, and PyPI. Takes under a minute.
set -euo pipefail

KMOCK_VERSION=0.8

emit_env=0
if [[ "${1:-}" == "--env" ]]; then
  emit_env=1
  shift
fi
case "${1:-}" in
  -h | --help)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$repo_root/.venv-kmock}"
# shellcheck source=lib/pinned-venv.sh
source "$repo_root/scripts/lib/pinned-venv.sh"
pinned_venv setup-kmock kmock "$KMOCK_VERSION" "$dir"

if ((emit_env)); then
  echo "export SFLOW_KMOCK_PYTHON=$dir/bin/python"
fi
