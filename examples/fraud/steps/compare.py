"""The `compare` step of examples/fraud (packaged in ghcr.io/acme/fraud-train:2.3.1 as
`train.compare`): keeps the better of two models and reports its metrics.

It follows the sflow step contract (docs/language.md §9): input and output paths come as
arguments (from the `{{inputs.…}}` / `{{outputs.…}}` templates of `run`) and as
SFLOW_INPUT_* / SFLOW_OUTPUT_* variables; the metrics go, as one JSON object, to the file named
by SFLOW_METRICS. A missing or mistyped metric fails the step.
"""

import argparse
import json
import os
import shutil

from train.evaluation import evaluate_on_holdout  # the image's own library


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gbm", default=os.environ.get("SFLOW_INPUT_GBM"))
    parser.add_argument("--mlp", default=os.environ.get("SFLOW_INPUT_MLP"))
    parser.add_argument("--best", default=os.environ.get("SFLOW_OUTPUT_BEST"))
    parser.add_argument("--report", default=os.environ.get("SFLOW_OUTPUT_REPORT"))
    args = parser.parse_args()

    scores = {name: evaluate_on_holdout(path) for name, path in (("gbm", args.gbm), ("mlp", args.mlp))}
    winner = max(scores, key=lambda name: scores[name]["auc"])
    shutil.copyfile(args.gbm if winner == "gbm" else args.mlp, args.best)

    with open(args.report, "w") as f:
        json.dump({"winner": winner, "scores": scores}, f, indent=2)

    # Declared as `metric auc: Score`, `metric precision: Score`, `metric recall: Score`
    # (Score = ratio): numbers in [0, 1].
    best = scores[winner]
    with open(os.environ["SFLOW_METRICS"], "w") as f:
        json.dump({"auc": best["auc"], "precision": best["precision"], "recall": best["recall"]}, f)


if __name__ == "__main__":
    main()
