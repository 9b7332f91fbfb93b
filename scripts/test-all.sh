#!/usr/bin/env bash
# Runs every test of the project, as CI does:
#   1. sets up the CPU libtorch the ML crate links (scripts/setup-libtorch.sh; cached);
#   2. `cargo test --workspace`: unit tests, golden cases, snapshots, property tests, the
#      end-to-end runtime tests, the language-server protocol tests; then the runtime's tests
#      again with its `ml` feature (the ML loop);
#   3. validates the manifests of every example with real third-party validators
#      (kubernetes-validate, Argo's schema, checkov; .ci/validate-manifests.sh);
#   4. builds and tests the VS Code extension (editors/vscode/build.sh).
# Each part prints its own summary; the script stops at the first failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

eval "$(scripts/setup-libtorch.sh --env)"

cargo test --workspace --locked

# The runtime's ML loop (std.torch steps, serving, Checker, Improver) is behind a feature so that
# the runtime builds without libtorch; its tests run here, with it.
cargo test -p sflow-runtime --features ml --locked

.ci/validate-manifests.sh

editors/vscode/build.sh
