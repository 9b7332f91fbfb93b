#!/usr/bin/env python3
"""Validates Argo Workflows objects (WorkflowTemplate, CronWorkflow) against Argo's schema.

The schema is the JSON Schema of the pydantic models that PyPI `hera` generates from Argo's
own OpenAPI spec (`hera.workflows.models`), made strict: every object schema forbids unknown
fields (`additionalProperties: false`), so a misspelt or misplaced field fails, as it would
with the API server's strict field validation of Argo's CRDs.

Usage: validate_argo.py FILE.yaml...   (other kinds in the files are skipped)
Exit status: 0 when every Argo object is valid, 1 otherwise.
"""

import sys

import jsonschema
import yaml
from hera.workflows import models

KINDS = {"WorkflowTemplate": models.WorkflowTemplate, "CronWorkflow": models.CronWorkflow}


def strict(node):
    """Forbids unknown fields in every object schema that lists its properties."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            strict(value)
    elif isinstance(node, list):
        for value in node:
            strict(value)
    return node


def schema_for(model):
    schema = strict(model.model_json_schema(by_alias=True, mode="validation"))
    # The kind and apiVersion are fixed for these objects.
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata", "spec"})
    return schema


def main(paths):
    validators = {}
    for kind, model in KINDS.items():
        schema = schema_for(model)
        jsonschema.Draft202012Validator.check_schema(schema)
        validators[kind] = jsonschema.Draft202012Validator(schema)
    checked = failed = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            documents = list(yaml.safe_load_all(f))
        for doc in documents:
            if not isinstance(doc, dict) or doc.get("kind") not in validators:
                continue
            checked += 1
            if doc.get("apiVersion") != "argoproj.io/v1alpha1":
                print(f"{path}: {doc.get('kind')}: apiVersion must be argoproj.io/v1alpha1")
                failed += 1
                continue
            errors = sorted(validators[doc["kind"]].iter_errors(doc), key=lambda e: list(e.absolute_path))
            name = (doc.get("metadata") or {}).get("name")
            for error in errors:
                where = "/".join(str(p) for p in error.absolute_path) or "(root)"
                print(f"{path}: {doc['kind']} {name}: {where}: {error.message[:300]}")
            if errors:
                failed += 1
    print(f"argo schema: {checked} object(s) checked, {failed} invalid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
