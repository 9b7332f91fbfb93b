"""The `report` step of the MNIST example: writes a model card for the trained model.

Usage: python report.py --model PATH --out PATH

Standard library only (no torch): the card says what can be known from the outside of the
TorchScript file and from the step contract, and nothing it cannot check:

- the model file's size and SHA-256;
- the run's params (`SFLOW_PARAM_*`) and where it ran (`SFLOW_APP`, `SFLOW_WORKFLOW`,
  `SFLOW_RUN_ID`);
- the metrics earlier steps of this run reported, when the run directory is visible
  (`$SFLOW_RUN_DIR/logs/STEP.N.metrics.json`, the local runtime's layout; the last attempt of
  each step, the last value of each metric). In a cluster the card says they were not found.
"""

import argparse
import glob
import hashlib
import json
import os
import re
import sys


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_metrics(path):
    """The last value of each key of a metrics file (one JSON object, or JSON lines)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        objects = [json.loads(text)]
    except ValueError:
        objects = [json.loads(line) for line in text.splitlines() if line.strip()]
    last = {}
    for o in objects:
        if isinstance(o, dict):
            last.update(o)
    return last


def step_metrics(run_dir, me):
    """{step: metrics} from the latest attempt of each other step of the run."""
    latest = {}
    for p in glob.glob(os.path.join(run_dir, "logs", "*.metrics.json")):
        m = re.match(r"(.+)\.(\d+)\.metrics\.json$", os.path.basename(p))
        if not m or m.group(1) == me:
            continue
        step, attempt = m.group(1), int(m.group(2))
        if step not in latest or attempt > latest[step][0]:
            latest[step] = (attempt, p)
    out = {}
    for step, (_, p) in sorted(latest.items()):
        try:
            out[step] = read_metrics(p)
        except (OSError, ValueError) as e:
            out[step] = {"error": f"unreadable metrics file: {e}"}
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="the TorchScript model file")
    ap.add_argument("--out", required=True, help="where to write the card (Markdown)")
    args = ap.parse_args(argv)

    if not os.path.isfile(args.model):
        print(f"report.py: no model file at {args.model}", file=sys.stderr)
        return 1
    size = os.path.getsize(args.model)
    digest = sha256_of(args.model)
    env = os.environ
    params = {k[len("SFLOW_PARAM_"):].lower(): v for k, v in sorted(env.items()) if k.startswith("SFLOW_PARAM_")}
    run_dir = env.get("SFLOW_RUN_DIR")
    metrics = step_metrics(run_dir, env.get("SFLOW_STEP", "report")) if run_dir else {}

    lines = [
        f"# Model card: {env.get('SFLOW_APP', 'app')} / {env.get('SFLOW_WORKFLOW', 'workflow')}",
        "",
        f"- file: `{args.model}`",
        f"- size: {size} bytes",
        f"- sha256: `{digest}`",
        f"- format: TorchScript (forward: float [N, 1, 28, 28] in [0, 1] -> logits [N, classes])",
        f"- run: {env.get('SFLOW_RUN_ID', env.get('SFLOW_RUN', 'unknown'))}",
        "",
        "## Params",
        "",
    ]
    lines += [f"- {k} = {v}" for k, v in params.items()] or ["(none)"]
    lines += ["", "## Metrics reported by the run's steps", ""]
    if metrics:
        for step, ms in metrics.items():
            shown = ", ".join(f"{k} = {v}" for k, v in ms.items() if k != "epoch")
            lines.append(f"- {step}: {shown}")
    else:
        lines.append("(not found: the run directory is not visible to this step)")
    labelled = env.get("SFLOW_INPUT_LABELLED")
    if labelled:
        lines += ["", f"Retrained by an Improver with the labelled samples in `{labelled}`."]
    lines.append("")

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print(f"report.py: wrote {args.out} ({size} bytes model, sha256 {digest[:12]}…)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
