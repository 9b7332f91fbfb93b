"""The `finetune` step of examples/sentiment (in registry.example.com/nlp/sentiment-train:0.9.2).

Step contract (docs/language.md §9):
- params arrive as `{{…}}` substitutions in `run` and as SFLOW_PARAM_<NAME> (SFLOW_PARAM_EPOCHS,
  SFLOW_PARAM_LR, SFLOW_PARAM_MAX_LEN);
- input/output paths as SFLOW_INPUT_CORPUS and SFLOW_OUTPUT_CHECKPOINT;
- in runs started by the Improver (`improver.improve(…)`), SFLOW_INPUT_LABELLED names a
  dataset of the newly labelled reviews, in the same format as the corpus;
- metrics go, as one JSON object, to the file named by SFLOW_METRICS.
"""

import argparse
import json
import os

from sentiment.data import load_reviews  # the image's own library
from sentiment.model import fine_tune


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=os.environ.get("SFLOW_INPUT_CORPUS"))
    parser.add_argument("--epochs", type=int, default=int(os.environ.get("SFLOW_PARAM_EPOCHS", "3")))
    parser.add_argument("--lr", type=float, default=float(os.environ.get("SFLOW_PARAM_LR", "2e-5")))
    parser.add_argument("--out", default=os.environ.get("SFLOW_OUTPUT_CHECKPOINT"))
    args = parser.parse_args()

    reviews = load_reviews(args.data)
    labelled = os.environ.get("SFLOW_INPUT_LABELLED")
    if labelled:
        # Drifted reviews that annotators labelled: weigh them up, they are what the live
        # traffic looks like now.
        reviews = reviews.concat(load_reviews(labelled), weight=3.0)

    checkpoint, train_loss = fine_tune(reviews, epochs=args.epochs, lr=args.lr)
    checkpoint.save(args.out)

    # Declared as `metric train_loss: float`.
    with open(os.environ["SFLOW_METRICS"], "w") as f:
        json.dump({"train_loss": float(train_loss)}, f)


if __name__ == "__main__":
    main()
