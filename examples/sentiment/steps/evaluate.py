"""The `evaluate` step of examples/sentiment: scores the checkpoint on the held-out reviews,
exports the model as TorchScript for the server, and reports `accuracy` and `f1`.

The runtime checks the reported metrics against `metric accuracy: ratio` and
`metric f1: ratio`: both must be present and be numbers in [0, 1], or the step fails.
"""

import argparse
import json
import os

from sentiment.model import evaluate, export_torchscript  # the image's own library


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default=os.environ.get("SFLOW_INPUT_CHECKPOINT"))
    parser.add_argument("--data", default=os.environ.get("SFLOW_INPUT_HELDOUT"))
    parser.add_argument("--model", default=os.environ.get("SFLOW_OUTPUT_MODEL"))
    parser.add_argument("--card", default=os.environ.get("SFLOW_OUTPUT_CARD"))
    args = parser.parse_args()

    scores = evaluate(args.checkpoint, args.data)
    export_torchscript(args.checkpoint, args.model)
    with open(args.card, "w") as f:
        json.dump(scores, f, indent=2)

    with open(os.environ["SFLOW_METRICS"], "w") as f:
        json.dump({"accuracy": scores["accuracy"], "f1": scores["f1"]}, f)


if __name__ == "__main__":
    main()
