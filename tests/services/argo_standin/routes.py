"""The Argo Server's REST routes (paths and shapes from the vendored swagger.json).

Authentication replays Argo's gatekeeper in client mode: every route needs an
``Authorization: Bearer ...`` header (else code 16 ``token not valid...``); version and
userinfo make no Kubernetes call, so any bearer token passes there; the workflow routes
check the token (unknown: code 16 ``Unauthorized``, as Kubernetes answers) and its
namespaces (code 7, Kubernetes' RBAC message, or Argo's own for list).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import apierrors as E
from .controller import Controller
from .schema import check_workflow
from .selectors import FieldCleaner, label_selector
from .store import Store, WorkflowRecord

VERSION = {"version": "v3.7.18", "buildDate": "2026-08-14T00:00:00Z",
           "gitCommit": "66e32e5cc367f223e2ecf4fbe852b95eaed83034", "gitTag": "v3.7.18",
           "gitTreeState": "clean", "goVersion": "go1.24.6", "compiler": "gc",
           "platform": "linux/amd64"}
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str = "") -> str:
        return self.query.get(name, [default])[0]

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except ValueError as exc:
            raise E.ApiError(E.INVALID_ARGUMENT, f"invalid character in request body: {exc}") \
                from None


@dataclass
class Response:
    status: int = 200
    body: Any = None
    stream: Iterator[bytes] | None = None


class Tokens:
    """token -> namespaces (a list, or "*" for all)."""

    def __init__(self, tokens: dict[str, Any]) -> None:
        self.tokens = tokens

    def bearer(self, req: Request) -> str:
        header = req.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            raise E.ApiError(E.UNAUTHENTICATED, E.TOKEN_NOT_VALID)
        return header[len("Bearer "):].strip()

    def user(self, token: str) -> str:
        scope = self.tokens[token]
        home = "argo" if scope == "*" else (scope[0] if scope else "default")
        return f"system:serviceaccount:{home}:hpcflow"

    def check(self, req: Request, verb: str, namespace: str, name: str = "",
              resource: str = "workflows", group: str = "argoproj.io") -> str:
        token = self.bearer(req)
        if token not in self.tokens:
            raise E.ApiError(E.UNAUTHENTICATED, E.UNAUTHORIZED)
        scope = self.tokens[token]
        if scope != "*" and namespace not in scope:
            if verb == "list" and resource == "workflows":
                raise E.list_forbidden(namespace)
            raise E.forbidden(self.user(token), verb, namespace, name, resource, group)
        return token


class ArgoApi:
    def __init__(self, store: Store, controller: Controller, tokens: Tokens) -> None:
        self.store = store
        self.controller = controller
        self.tokens = tokens

    def routes(self) -> list[tuple[str, str, Callable[[Request], Response]]]:
        wf = "/api/v1/workflows/{namespace}"
        return [
            ("GET", "/api/v1/version", self.version),
            ("GET", "/api/v1/userinfo", self.userinfo),
            ("POST", wf, self.create),
            ("GET", wf, self.list),
            ("GET", wf + "/{name}", self.get),
            ("DELETE", wf + "/{name}", self.delete),
            ("PUT", wf + "/{name}/terminate", self.terminate),
            ("PUT", wf + "/{name}/stop", self.stop),
            ("GET", wf + "/{name}/log", self.logs),
            ("GET", wf + "/{name}/{podName}/log", self.logs),
        ]

    # -- info --------------------------------------------------------------------------------
    def version(self, req: Request) -> Response:
        self.tokens.bearer(req)
        return Response(body=VERSION)

    def userinfo(self, req: Request) -> Response:
        token = self.tokens.bearer(req)
        if token not in self.tokens.tokens:
            return Response(body={})
        user = self.tokens.user(token)
        _, _, ns, sa = user.split(":")
        return Response(body={"issuer": "kubernetes/serviceaccount", "subject": user,
                              "serviceAccountName": sa, "serviceAccountNamespace": ns})

    # -- workflows ---------------------------------------------------------------------------
    def _record(self, req: Request, verb: str) -> WorkflowRecord:
        ns, name = req.params["namespace"], req.params["name"]
        self.tokens.check(req, verb, ns, name)
        rec = self.store.get(ns, name)
        if rec is None:
            raise E.not_found(name)
        return rec

    def create(self, req: Request) -> Response:
        ns = req.params["namespace"]
        body = req.json()
        self.tokens.check(req, "create", ns)
        workflow = body.get("workflow")
        if not workflow:
            raise E.ApiError(E.INVALID_ARGUMENT, "workflow body not specified")
        meta = workflow.setdefault("metadata", {})
        meta.setdefault("namespace", ns)
        if meta["namespace"] != ns:
            raise E.ApiError(E.INVALID_ARGUMENT, "the namespace of the provided object does "
                             "not match the namespace sent on the request")
        check_workflow(workflow)
        self._validate(workflow)
        if body.get("serverDryRun") or (body.get("createOptions") or {}).get("dryRun"):
            return Response(body=workflow)
        with self.store.lock:
            if not meta.get("name"):
                if not meta.get("generateName"):
                    raise E.ApiError(E.INVALID_ARGUMENT, 'Workflow.argoproj.io "" is invalid: '
                                     "metadata.name: Required value: name or generateName is "
                                     "required")
                meta["name"] = meta["generateName"] + _suffix()
            if self.store.get(ns, meta["name"]) is not None:
                raise E.already_exists(meta["name"])
            rec = self.store.add(workflow)
            return Response(body=self.store.snapshot(rec))

    @staticmethod
    def _validate(workflow: dict[str, Any]) -> None:
        """The few checks of Argo's validator the stand-in relies on (validate.go)."""
        name = (workflow.get("metadata") or {}).get("name")
        if name and (len(name) > 253 or not NAME_RE.match(name)):
            raise E.ApiError(E.INVALID_ARGUMENT, f'Workflow.argoproj.io "{name}" is invalid: '
                             "metadata.name: Invalid value: a lowercase RFC 1123 subdomain "
                             "must consist of lower case alphanumeric characters, '-' or '.'")
        spec = workflow.get("spec") or {}
        names = {t.get("name") for t in spec.get("templates") or []}
        entry = spec.get("entrypoint")
        if not entry:
            raise E.ApiError(E.INVALID_ARGUMENT, "spec.entrypoint is required")
        if entry not in names:
            raise E.ApiError(E.INVALID_ARGUMENT, f"spec.entrypoint template '{entry}' undefined")
        for tmpl in spec.get("templates") or []:
            refs = [t.get("template") for t in (tmpl.get("dag") or {}).get("tasks") or []]
            refs += [s.get("template") for g in tmpl.get("steps") or [] for s in g]
            for ref in refs:
                if ref not in names:
                    raise E.ApiError(E.INVALID_ARGUMENT,
                                     f"templates.{tmpl['name']} template reference "
                                     f"{tmpl['name']}.{ref} not found")

    def get(self, req: Request) -> Response:
        rec = self._record(req, "get")
        with self.store.lock:
            obj = self.store.snapshot(rec)
        return Response(body=FieldCleaner(req.arg("fields")).clean(obj))

    def list(self, req: Request) -> Response:
        ns = req.params["namespace"]
        self.tokens.check(req, "list", ns)
        match = label_selector(req.arg("listOptions.labelSelector"))
        name_filter = req.arg("nameFilter")
        with self.store.lock:
            items = [self.store.snapshot(r) for r in self.store.in_namespace(ns)
                     if match(r.obj["metadata"].get("labels") or {})
                     and (not name_filter or name_filter in r.name)]
            version = self.store.next_version()
        items.sort(key=lambda w: (w["metadata"]["creationTimestamp"], w["metadata"]["name"]))
        meta: dict[str, Any] = {"resourceVersion": version}
        limit = int(req.arg("listOptions.limit") or 0)
        offset = int(req.arg("listOptions.continue") or 0)
        if limit:
            if offset + limit < len(items):
                meta["continue"] = str(offset + limit)
            items = items[offset:offset + limit]
        # Go marshals the empty list of a real server as null.
        body = {"metadata": meta, "items": items or None}
        return Response(body=FieldCleaner(req.arg("fields")).clean(body))

    def delete(self, req: Request) -> Response:
        rec = self._record(req, "delete")
        with self.store.lock:
            self.controller.delete(rec)
        return Response(body={})

    def terminate(self, req: Request) -> Response:
        return self._shutdown(req, "Terminate")

    def stop(self, req: Request) -> Response:
        return self._shutdown(req, "Stop")

    def _shutdown(self, req: Request, strategy: str) -> Response:
        rec = self._record(req, "update")
        with self.store.lock:
            if rec.status.get("phase") not in ("Succeeded", "Failed", "Error"):
                rec.shutdown = strategy
                rec.obj["spec"]["shutdown"] = strategy
                rec.obj["metadata"]["resourceVersion"] = self.store.next_version()
            return Response(body=self.store.snapshot(rec))

    # -- logs --------------------------------------------------------------------------------
    def logs(self, req: Request) -> Response:
        rec = self._record(req, "get")
        pod_name = req.params.get("podName") or req.arg("podName")
        grep = re.compile(req.arg("grep"))
        opts = {k.split(".", 1)[1]: v[0] for k, v in req.query.items()
                if k.startswith("logOptions.")}
        return Response(stream=self._log_stream(rec, pod_name, grep, opts))

    def _log_stream(self, rec: WorkflowRecord, pod_name: str, grep: re.Pattern[str],
                    opts: dict[str, str]) -> Iterator[bytes]:
        container = opts.get("container") or "main"
        follow = _bool(opts.get("follow"))
        timestamps = _bool(opts.get("timestamps"))
        tail = int(opts["tailLines"]) if opts.get("tailLines") else None
        since = float(opts["sinceSeconds"]) if opts.get("sinceSeconds") else None
        offsets: dict[str, int] = {}

        def read_new() -> list[tuple[str, str, str]]:
            out = []
            with self.store.lock:
                pods = [p for p in rec.pods.values()
                        if (not pod_name or p.name == pod_name) and p.phase not in
                        ("Pending", "Deleted")]
            for pod in pods:
                path = pod.log_path(container)
                try:
                    text = path.read_text(encoding="utf-8")
                except OSError:
                    continue
                lines = text.splitlines()
                first = pod.name not in offsets
                start = offsets.get(pod.name, 0)
                offsets[pod.name] = len(lines)
                new = lines[start:]
                if first and tail is not None:
                    new = new[-tail:] if tail > 0 else []
                for line in new:
                    stamp, _, content = line.partition(" ")
                    if since is not None and _age(stamp) > since:
                        continue
                    out.append((stamp, pod.name, line if timestamps else content))
            out.sort()
            return out

        def entries(batch: list[tuple[str, str, str]]) -> Iterator[bytes]:
            for _, pod, content in batch:
                if grep.search(content):
                    yield (json.dumps({"result": {"content": content, "podName": pod}})
                           + "\n").encode()

        yield from entries(read_new())
        while follow:
            with self.store.lock:
                finished = rec.status.get("phase") in ("Succeeded", "Failed", "Error") \
                    or self.store.get(rec.namespace, rec.name) is not rec
            time.sleep(0.2)
            yield from entries(read_new())
            if finished:
                break


def _bool(value: str | None) -> bool:
    """grpc-gateway parses query booleans with Go's strconv.ParseBool."""
    return value in ("1", "t", "T", "true", "TRUE", "True")


def _age(stamp: str) -> float:
    import datetime as dt
    try:
        t = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return 0.0
    return (dt.datetime.now(dt.timezone.utc) - t).total_seconds()


def _suffix() -> str:
    import secrets
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(secrets.choice(alphabet) for _ in range(5))
