#!/usr/bin/env python3
"""Reads DIR/corpus.yaml (written by sflow's YAML emitter, `cargo run -p sflow-emit --example
yaml_corpus -- DIR`) with PyYAML, a YAML 1.1 reader as used by checkov and kubernetes-validate,
and checks that it equals DIR/corpus.json: every hostile string, key and number reads back
exactly as written. Exit status 1 on any difference."""

import json
import sys

import yaml


def differences(a, b, path=""):
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        if a is not b and a != b or type(a) is not type(b):
            yield f"{path}: {a!r} != {b!r}"
        return
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if a != b:
            yield f"{path}: {a!r} != {b!r}"
        return
    if type(a) is not type(b):
        yield f"{path}: {type(a).__name__} {a!r:.80} != {type(b).__name__} {b!r:.80}"
        return
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b), key=repr):
            if key not in a or key not in b:
                yield f"{path}: key {key!r} on one side only"
            else:
                yield from differences(a[key], b[key], f"{path}/{key!r}")
    elif isinstance(a, list):
        if len(a) != len(b):
            yield f"{path}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            yield from differences(x, y, f"{path}[{i}]")
    elif a != b:
        yield f"{path}: {a!r:.80} != {b!r:.80}"


def main(directory):
    with open(f"{directory}/corpus.yaml", encoding="utf-8") as f:
        read = yaml.safe_load(f)
    with open(f"{directory}/corpus.json", encoding="utf-8") as f:
        expected = json.load(f)
    problems = list(differences(read, expected))
    for p in problems[:50]:
        print(p)
    print(f"yaml corpus: {len(expected['list'])} strings read back by PyYAML, {len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
