"""A workflow as an Argo ``Workflow`` manifest, and back (dflow's ``to_dict``/``from_dict``).

The manifest has Argo's shape (``apiVersion``, ``metadata``, ``spec.templates`` with
``steps``, ``dag`` and ``script`` templates, ``arguments``, ``when``, ``withParam``...), so
Argo's tools and people read it as they read dflow's. What Argo has no field for (keys,
slices, executors, an OP's pickled code, typed values) travels in annotations: the
workflow's ``hpcflow/workflow`` and each template's ``hpcflow/template`` hold hpcflow's
stored form, and a Python OP's ``script.source`` holds its pickled code. Reading a manifest
back rebuilds exactly that stored form, then renders it again and compares: a manifest
edited by hand, or not written by hpcflow, is refused in one line instead of running
something else than it says.

>>> spec = {"version": 1, "name": "w", "entrypoint": "w", "parallelism": None, "labels": {},
...         "templates": {"w": {"kind": "steps", "name": "w", "steps": [],
...                             "inputs": {"parameters": {}, "artifacts": {}},
...                             "outputs": {"parameters": {}, "artifacts": {}}}}}
>>> manifest = to_manifest(spec, {})
>>> manifest["kind"], manifest["metadata"]["generateName"], manifest["spec"]["entrypoint"]
('Workflow', 'w-', 'w')
>>> from_manifest(manifest) == (spec, {})
True
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import textwrap
from typing import Any

from hpcflow.errors import WorkflowDefinitionError

API_VERSION = "argoproj.io/v1alpha1"
WORKFLOW_ANNOTATION = "hpcflow/workflow"
TEMPLATE_ANNOTATION = "hpcflow/template"
#: The stored form's fields that the workflow's annotation carries (the rest is templates).
_WORKFLOW_FIELDS = ("version", "name", "entrypoint", "parallelism", "labels",
                    "workflow_parameters", "on_exit")
_PICKLE = re.compile(r'^OP_PICKLE = """\n(?P<data>[A-Za-z0-9+/=\n]*)"""$', re.MULTILINE)
_RETRY_POLICY = {"Failed": "OnFailure", "Error": "OnError", "Always": "Always"}


def _text(value: Any) -> str:
    """A value as the text an Argo parameter holds (a string as it is, else JSON)."""
    return value if isinstance(value, str) else json.dumps(value)


def _value_text(spec: dict) -> str:
    """A stored parameter value (``{"value"}``, ``{"expr"}``, ``{"calc"}``...) as text."""
    def plain(part: dict) -> Any:
        if "list" in part:
            return [plain(v) for v in part["list"]]
        if "dict" in part:
            return {k: plain(v) for k, v in part["dict"].items()}
        for field in ("value", "expr", "calc", "text"):
            if field in part:
                return part[field]
        return None

    return _text(plain(spec))


def _loop_text(spec: dict) -> str:
    if "expr" in spec:
        return str(spec["expr"])
    if "value" in spec:
        return json.dumps(spec["value"])
    return json.dumps(spec, sort_keys=True)  # argo_range(...) and the like: hpcflow's form


def _artifact_argument(name: str, spec: dict | None) -> dict:
    if spec is None:
        return {"name": name, "optional": True}
    if "expr" in spec:
        return {"name": name, "from": spec["expr"]}
    parts = spec.get("artifact", {}).get("parts") or []
    if len(parts) == 1 and parts[0].get("key"):
        return {"name": name, "s3": {"key": parts[0]["key"]}}
    return {"name": name, "raw": {"data": json.dumps(spec.get("artifact"), sort_keys=True)}}


def _step(step: dict, in_dag: bool) -> dict:
    rendered: dict[str, Any] = {"name": step["name"], "template": step["template"]}
    arguments: dict[str, list] = {}
    if step.get("parameters"):
        arguments["parameters"] = [{"name": n, "value": _value_text(v)}
                                   for n, v in step["parameters"].items()]
    if step.get("artifacts"):
        arguments["artifacts"] = [_artifact_argument(n, v) for n, v in step["artifacts"].items()]
    if arguments:
        rendered["arguments"] = arguments
    if step.get("when"):
        rendered["when"] = step["when"]
    if step.get("with_param"):
        rendered["withParam"] = _loop_text(step["with_param"])
    if step.get("with_sequence"):
        rendered["withParam"] = _loop_text(step["with_sequence"])
    if step.get("continue_on_failed"):
        rendered["continueOn"] = {"failed": True, "error": True}
    if in_dag and step.get("dependencies"):
        rendered["dependencies"] = list(step["dependencies"])
    return rendered


def _io(template: dict) -> tuple[dict, dict]:
    ins, outs = template["inputs"], template["outputs"]
    inputs: dict[str, list] = {}
    if ins["parameters"]:
        inputs["parameters"] = [
            {"name": n, **({"default": _value_text(p["default"])} if "default" in p else {})}
            for n, p in ins["parameters"].items()]
    if ins["artifacts"]:
        inputs["artifacts"] = [
            {"name": n, "path": a.get("path") or f"/tmp/inputs/artifacts/{n}",
             **({"optional": True} if a.get("optional") else {})}
            for n, a in ins["artifacts"].items()]
    outputs: dict[str, list] = {}
    if outs["parameters"]:
        params = []
        for n, p in outs["parameters"].items():
            source: dict[str, Any] = {}
            if p.get("value_from_parameter"):
                source["parameter"] = _value_text(p["value_from_parameter"])
            elif p.get("value_from_expression"):
                source["expression"] = json.dumps(p["value_from_expression"], sort_keys=True)
            else:
                source["path"] = p.get("value_from_path") or f"/tmp/outputs/parameters/{n}"
            if "default" in p:
                source["default"] = _text(p["default"])
            params.append({"name": n, "valueFrom": source,
                           **({"globalName": p["global_name"]} if p.get("global_name") else {})})
        outputs["parameters"] = params
    if outs["artifacts"]:
        arts = []
        for n, a in outs["artifacts"].items():
            entry: dict[str, Any] = {"name": n}
            if a.get("from"):
                entry["from"] = _artifact_argument(n, a["from"]).get("from", "")
            elif a.get("from_expression"):
                entry["fromExpression"] = json.dumps(a["from_expression"], sort_keys=True)
            else:
                entry["path"] = a.get("path") or f"/tmp/outputs/artifacts/{n}"
            if "archive" in a:
                entry["archive"] = {"none": {}} if a["archive"] is None else {"tar": {}}
            if a.get("global_name"):
                entry["globalName"] = a["global_name"]
            arts.append(entry)
        outputs["artifacts"] = arts
    return inputs, outputs


def _op_source(template: dict, blob: bytes) -> str:
    data = "\n".join(textwrap.wrap(base64.b64encode(blob).decode(), 76))
    return (f"# hpcflow Python OP {template.get('op_name')!r}: its code, pickled with "
            "cloudpickle (base64 below, sha256\n"
            f"# {template['op']}), is run by hpcflow's step runner.\n"
            f'OP_PICKLE = """\n{data}\n"""\n')


def _template(template: dict, blobs: dict[str, bytes]) -> dict:
    rendered: dict[str, Any] = {
        "name": template["name"],
        "metadata": {"annotations": {TEMPLATE_ANNOTATION: json.dumps(template)}},
    }
    inputs, outputs = _io(template)
    if inputs:
        rendered["inputs"] = inputs
    if outputs:
        rendered["outputs"] = outputs
    kind = template["kind"]
    if kind == "steps":
        rendered["steps"] = [[_step(s, False) for s in group] for group in template["steps"]]
    elif kind == "dag":
        rendered["dag"] = {"tasks": [_step(t, True) for t in template["tasks"]]}
    elif kind == "python":
        blob = blobs.get(template["op"])
        if blob is None:
            raise WorkflowDefinitionError(
                f"template {template['name']!r}: its OP's code is not at hand, so the manifest "
                "could not hold it")
        rendered["script"] = {"image": template.get("image") or "python:3",
                              "command": ["python3"], "source": _op_source(template, blob)}
    else:
        rendered["script"] = {"image": template.get("image") or "alpine:3",
                              "command": list(template.get("command") or ["sh"]),
                              "source": template.get("script") or ""}
    if template.get("timeout"):
        rendered["timeout"] = f"{template['timeout']}s"
    if template.get("retry_on_transient_error"):
        rendered["retryStrategy"] = {"limit": str(template["retry_on_transient_error"]),
                                     "retryPolicy": "OnTransientError"}
    elif template.get("retry_policy"):
        policy = template["retry_policy"]
        rendered["retryStrategy"] = {"limit": str(policy["limit"]),
                                     "retryPolicy": _RETRY_POLICY.get(policy["on"], "Always")}
    if template.get("parallelism"):
        rendered["parallelism"] = template["parallelism"]
    return rendered


def to_manifest(spec: dict, blobs: dict[str, bytes], id: str | None = None) -> dict:
    """The Argo ``Workflow`` manifest of a stored spec (``build_spec``'s) and its OPs."""
    head = {k: spec.get(k) for k in _WORKFLOW_FIELDS if k in spec}
    metadata: dict[str, Any] = {
        "generateName": f"{spec['name']}-",
        "annotations": {WORKFLOW_ANNOTATION: json.dumps(head)},
    }
    if id is not None:
        metadata["name"] = id
    if spec.get("labels"):
        metadata["labels"] = dict(spec["labels"])
    body: dict[str, Any] = {
        "entrypoint": spec["entrypoint"],
        "templates": [_template(t, blobs) for t in spec["templates"].values()],
    }
    if spec.get("workflow_parameters"):
        body["arguments"] = {"parameters": [
            {"name": n, "value": _text(v)} for n, v in spec["workflow_parameters"].items()]}
    if spec.get("parallelism"):
        body["parallelism"] = spec["parallelism"]
    if spec.get("on_exit"):
        body["onExit"] = spec["on_exit"]
    return {"apiVersion": API_VERSION, "kind": "Workflow", "metadata": metadata, "spec": body}


def _refuse(why: str) -> WorkflowDefinitionError:
    return WorkflowDefinitionError(f"Workflow.from_dict: {why}")


def _annotation(holder: Any, key: str, where: str) -> dict:
    text = ((holder or {}).get("annotations") or {}).get(key) if isinstance(holder, dict) else None
    if not isinstance(text, str):
        raise _refuse(
            f"{where} has no {key!r} annotation: hpcflow runs only manifests that its "
            "Workflow.to_dict wrote (an Argo or dflow manifest's containers and scripts are "
            "not hpcflow's OPs); build the workflow in Python instead")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise _refuse(f"{where}'s {key!r} annotation is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise _refuse(f"{where}'s {key!r} annotation is not an object")
    return value


def from_manifest(manifest: Any) -> tuple[dict, dict[str, bytes]]:
    """The stored spec and OP blobs a manifest from ``to_manifest`` holds; anything else (a
    manifest not written by hpcflow, or edited since) is refused in one line."""
    from hpcflow.spec import SPEC_VERSION

    if not isinstance(manifest, dict) or manifest.get("kind") != "Workflow":
        raise _refuse("not an Argo Workflow manifest (kind: Workflow)")
    head = _annotation(manifest.get("metadata"), WORKFLOW_ANNOTATION, "the workflow")
    if head.get("version") != SPEC_VERSION:
        raise _refuse(f"the manifest is of hpcflow's format {head.get('version')!r}, this "
                      f"hpcflow reads {SPEC_VERSION}: dump it again with this version")
    body = manifest.get("spec") or {}
    templates: dict[str, dict] = {}
    blobs: dict[str, bytes] = {}
    for rendered in body.get("templates") or []:
        where = f"template {rendered.get('name')!r}" if isinstance(rendered, dict) else "a template"
        template = _annotation(rendered.get("metadata") if isinstance(rendered, dict) else None,
                               TEMPLATE_ANNOTATION, where)
        if template.get("kind") == "python":
            found = _PICKLE.search(str((rendered.get("script") or {}).get("source", "")))
            blob = base64.b64decode(found.group("data")) if found else b""
            if hashlib.sha256(blob).hexdigest() != template.get("op"):
                raise _refuse(f"{where}: the OP's pickled code in script.source does not match "
                              "its sha256: the manifest was edited; dump it again")
            blobs[template["op"]] = blob
        templates[str(template.get("name"))] = template
    spec = {**head, "templates": templates}
    if spec.get("entrypoint") not in templates:
        raise _refuse(f"the entrypoint {spec.get('entrypoint')!r} is not among the templates")
    if spec.get("on_exit") is not None and spec["on_exit"] not in templates:
        raise _refuse(f"the exit handler {spec['on_exit']!r} is not among the templates")
    again = to_manifest(spec, blobs, (manifest.get("metadata") or {}).get("name"))
    if again != manifest:
        raise _refuse(f"{_first_difference(again, manifest)} differs from what hpcflow wrote "
                      "(the manifest was edited by hand?): change the workflow in Python and "
                      "dump it again")
    return spec, blobs


def _first_difference(expected: dict, given: dict) -> str:
    rendered = {t["name"]: t for t in expected["spec"]["templates"]}
    for template in given.get("spec", {}).get("templates") or []:
        name = template.get("name") if isinstance(template, dict) else None
        if rendered.get(name) != template:
            return f"template {name!r}"
    for key in ("metadata", "spec"):
        if expected.get(key) != given.get(key):
            return f"the workflow's {key}"
    return "the manifest"
