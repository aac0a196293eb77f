"""Validation of created Workflows against Argo's own JSON Schema (vendored schema.json).

The real server decodes the body into Go structs and runs its own validator; the stand-in
checks the body against the JSON Schema instead, which is STRICTER in places, on purpose:

* ``IntOrString`` (e.g. ``activeDeadlineSeconds``, ``retryStrategy.limit``) is
  ``{"type": "string"}`` in the schema, while the Go server also takes a JSON integer;
* ``Quantity`` (``resources`` values such as ``cpu: 1``) likewise is string-only here.

A manifest valid for Argo may therefore be refused here; the remedy is to send those values
as strings (which the Go server accepts as well), not to loosen the schema.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

from .apierrors import INVALID_ARGUMENT, ApiError

SCHEMA_PATH = Path(__file__).with_name("schema.json")
WORKFLOW_DEF = "io.argoproj.workflow.v1alpha1.Workflow"


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    schema = json.loads(SCHEMA_PATH.read_text())
    root = {"$schema": schema["$schema"], "$ref": f"#/definitions/{WORKFLOW_DEF}",
            "definitions": schema["definitions"]}
    cls = jsonschema.validators.validator_for(schema)
    return cls(root)


def schema_errors(workflow: dict[str, Any]) -> list[str]:
    """Every schema violation as ``path: message`` (empty when valid)."""
    out = []
    for err in sorted(_validator().iter_errors(workflow), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in err.absolute_path) or "(root)"
        out.append(f"{where}: {err.message}")
    return out


def check_workflow(workflow: dict[str, Any]) -> None:
    """Raise InvalidArgument (HTTP 400) naming each violation."""
    errors = schema_errors(workflow)
    if errors:
        raise ApiError(INVALID_ARGUMENT,
                       "Workflow does not match Argo's JSON Schema (v3.7.18): " + "; ".join(errors))
