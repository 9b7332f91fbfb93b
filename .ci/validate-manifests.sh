#!/usr/bin/env bash
# Validates what `sflowc build` emits for every example and every golden program with real
# third-party validators; any failure fails the script (and CI):
#
#   1. kubernetes-validate --strict, against the Kubernetes 1.31 and 1.37 schemas: every core
#      object, unknown fields rejected (custom kinds — Argo, KEDA, Prometheus — are only warned
#      about by this tool; Argo's get their own check below);
#   2. Argo Workflows' schema for WorkflowTemplate and CronWorkflow, unknown fields forbidden:
#      the JSON Schema of the models PyPI `hera` generates from Argo's OpenAPI spec
#      (.ci/validate_argo.py);
#   3. checkov --framework kubernetes with zero failed checks; the only checks skipped are the
#      ids listed, each with its reason, under "Skipped checkov checks" in docs/security.md;
#   4. each plan.json against docs/plan.schema.json;
#   5. the YAML emitter: a corpus of hostile strings read back by PyYAML (a YAML 1.1 reader).
#
# Usage: .ci/validate-manifests.sh [NAME...]   (default: every program; NAME is an example's
#        directory name or a golden program's file stem)
# Needs: cargo, python3 with the venv module (the validators are installed into a venv).
# Environment: SFLOW_VALIDATE_VENV (default target/validate-venv), SFLOWC (a built sflowc;
# default: build one with cargo).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

venv=${SFLOW_VALIDATE_VENV:-$root/target/validate-venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r .ci/validate-requirements.txt

sflowc=${SFLOWC:-}
if [ -z "$sflowc" ]; then
  cargo build --quiet --locked -p sflowc
  sflowc=$root/target/debug/sflowc
fi

# The YAML emitter, read back by PyYAML (a YAML 1.1 reader) on a corpus of hostile strings.
cargo run --quiet --locked -p sflow-emit --example yaml_corpus -- "$root/target/validate-corpus"
if ! "$venv/bin/python" .ci/check_yaml_corpus.py "$root/target/validate-corpus"; then
  echo "FAIL: YAML corpus"
  exit 1
fi

# The programs: each example's root file, and the golden programs (built with the golden
# user templates).
programs=()
for dir in examples/*/; do
  dir=${dir%/}
  name=$(basename "$dir")
  if [ -f "$dir/main.sflow" ]; then programs+=("$name=$dir/main.sflow")
  elif [ -f "$dir/$name.sflow" ]; then programs+=("$name=$dir/$name.sflow")
  else echo "examples/$name has no main.sflow or $name.sflow" >&2; exit 1
  fi
done
for file in tests/golden/programs/*.sflow; do
  programs+=("$(basename "$file" .sflow)=$file")
done

# checkov ids skipped, from docs/security.md (the documented list is the only list).
skips=$(sed -n '/^## Skipped checkov checks/,/^## [^S]/p' docs/security.md | grep -oE '^\| *`?CKV2?_K8S_[0-9]+' | tr -d '|` ' | paste -sd, -)
echo "checkov checks skipped (docs/security.md): ${skips:-none}"

out=$root/target/validate
rm -rf "$out"
mkdir -p "$out"
failed=0
only=" $* "
count=0
for entry in "${programs[@]}"; do
  name=${entry%%=*}
  file=${entry#*=}
  if [ $# -gt 0 ] && [[ $only != *" $name "* ]]; then continue; fi
  count=$((count + 1))
  dir=$out/$name
  templates=()
  case $file in tests/golden/programs/*) templates=(--templates tests/golden/templates) ;; esac
  echo "== $name ($file)"
  "$sflowc" build "$file" -o "$dir" "${templates[@]}"
  manifests=()
  for f in "$dir"/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
  done

  for version in 1.31.0 1.37.0; do
    if ! "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "${manifests[@]}"; then
      echo "FAIL: kubernetes-validate --strict -k $version ($name)"
      failed=1
    fi
  done
  if ! "$venv/bin/python" .ci/validate_argo.py "${manifests[@]}"; then
    echo "FAIL: Argo schema ($name)"
    failed=1
  fi
  if ! "$venv/bin/python" - "$dir/plan.json" <<'PY'
import json, sys
import jsonschema
schema = json.load(open("docs/plan.schema.json"))
plan = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator(schema).validate(plan)
print("plan schema: plan.json valid")
PY
  then
    echo "FAIL: plan.json against docs/plan.schema.json ($name)"
    failed=1
  fi
  skip_args=()
  [ -n "$skips" ] && skip_args=(--skip-check "$skips")
  if "$venv/bin/checkov" --framework kubernetes -d "$dir" --compact --skip-download "${skip_args[@]}" >"$out/$name.checkov.log" 2>&1; then
    grep -E '^Passed checks' "$out/$name.checkov.log" | sed 's/^/checkov: /'
  else
    echo "FAIL: checkov ($name)"
    grep -vE '^(Traceback|  File|    |urllib3|requests|The above exception|During handling)' "$out/$name.checkov.log" | grep -E 'Check:|FAILED|File:|Passed checks' || cat "$out/$name.checkov.log"
    failed=1
  fi
done

if [ "$failed" -ne 0 ]; then
  echo "manifest validation FAILED"
  exit 1
fi
if [ "$count" -eq 0 ]; then
  echo "no program matched: $*" >&2
  exit 1
fi
echo "manifest validation passed: $count programs"
