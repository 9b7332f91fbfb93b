#!/usr/bin/env bash
# Runs every test of the project, as CI does:
#   1. sets up the CPU libtorch the ML crate links (scripts/setup-libtorch.sh; cached);
#   2. `cargo test --workspace`: unit tests, golden cases, snapshots, property tests, the
#      end-to-end runtime tests, the language-server protocol tests; then the runtime's tests
#      again with its `ml` feature (the ML loop);
#   3. validates the manifests of every example with real third-party validators
#      (kubernetes-validate, Argo's schema, checkov; .ci/validate-manifests.sh);
#   4. builds and tests the VS Code extension (editors/vscode/build.sh);
#   5. runs the MLflow tests against a real MLflow server (scripts/setup-mlflow.sh);
#   6. runs the Kubernetes stand-in tests (`standin_*`: sflowc apply/delete and `sflow runtime`
#      against kmock, scripts/setup-kmock.sh) and lints the Dockerfile (scripts/lint-dockerfile.sh);
#   7. runs the MNIST demo in quick mode and checks its report (examples/mnist/check-report).
# Each part prints its own summary; the script stops at the first failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

eval "$(scripts/setup-libtorch.sh --env)"

cargo test --workspace --locked

# The runtime's ML loop (std.torch steps, serving, Checker, Improver) is behind a feature so that
# the runtime builds without libtorch; its tests run here, with it.
cargo test -p sflow-runtime --features ml --locked

# MLflow compatibility against the real thing: a real `mlflow server` (SQLite, loopback) and the
# MLflow Python client, from a virtual environment with a pinned mlflow (scripts/setup-mlflow.sh;
# cached in .venv-mlflow/). Ignored by the plain run above; about three minutes.
eval "$(scripts/setup-mlflow.sh --env)"
cargo test -p sflow-runtime --test mlflow --locked -- --ignored --test-threads=1 --skip bench_

.ci/validate-manifests.sh

editors/vscode/build.sh

# `sflowc apply`/`delete` against the Kubernetes stand-in (PyPI kmock's in-memory API server,
# tests/standin/kube_standin.py; scripts/setup-kmock.sh, cached in .venv-kmock/), and the
# Dockerfile's lint (hadolint from PyPI; scripts/lint-dockerfile.sh). No Docker, no cluster.
eval "$(scripts/setup-kmock.sh --env)"
cargo test -p sflow-kube --locked -- --ignored
cargo test -p sflowc --test standin_cli --locked -- --ignored
# `sflow runtime` (the runtime's Kubernetes backend, feature `kubernetes`): its unit tests, then
# the binary against the stand-in (Argo played by the test, two replicas, the Role's RBAC).
cargo test -p sflow-runtime --features kubernetes --locked --lib kube::
cargo test -p sflow-runtime --features kubernetes --test standin_kube --locked -- --ignored
# The cluster's ML loop (features `ml` and `kubernetes`, as the image): real `sflow serve` replicas
# reporting to `sflow runtime` (Tracker, batches, latency → HPA), a CronWorkflow's run recorded.
cargo test -p sflow-runtime --features ml,kubernetes --test standin_kube_ml --locked -- --ignored
scripts/lint-dockerfile.sh

# The main job, checked: the MNIST case study in quick mode (a release build of `sflow` with
# `ml` and of the demo driver; about two minutes once built), then its report's claims
# (examples/mnist/check-report: drift seen, a better model served, accuracy regained).
examples/mnist/run-demo --quick --out target/mnist-demo
examples/mnist/check-report target/mnist-demo
