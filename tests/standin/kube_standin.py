"""A Kubernetes API stand-in for the stand-in tests (compiler/kube/tests/standin_*.rs).

No Kubernetes API server can run on the machines this project is built on, so the tests talk
to PyPI `kmock`'s KubernetesEmulator: a stateful, in-memory server that speaks the real
Kubernetes HTTP API (discovery, GET, LIST, POST, PATCH, DELETE, watch) on loopback. This file
runs it on a free port and fixes the gaps that matter to a client such as `kube` (measured with
kmock 0.8; each fix is marked GAP below):

- core discovery (`GET /api/v1`) reports `groupVersion: /v1` instead of `v1`;
- lists carry no `kind`/`apiVersion`, and ignore `labelSelector`;
- objects get no `uid`, `resourceVersion`, `generation` nor `creationTimestamp`;
- a server-side apply (`PATCH` with `application/apply-patch+yaml`) of an object that does not
  exist answers 404, where Kubernetes creates it;
- `PUT` (a replace, the `update` verb) is not served, and no write checks the
  `resourceVersion` it carries (optimistic concurrency: leader election relies on it);
- a strategic-merge patch replaces lists whole, where Kubernetes merges lists of named items
  (containers, env, ports, volumes) by `name`;
- watches ignore `labelSelector` and never end (a real API server ends each watch after its
  `timeoutSeconds`; `--watch-max` ends them sooner, to test clients' resumption).

With `--request-log FILE`, every API request is appended to FILE as one JSON line (verb,
group, resource, namespace, name, subresource and the bearer token that sent it): the runtime's
tests check every request it made against the RBAC Role the build grants it.

What it still does not do, and the tests must not rely on (docs/kubernetes.md lists them):
no controllers (Deployments never get a status unless a test writes one; Argo runs nothing), no
field managers (an apply is a recursive merge: fields dropped from the applied configuration
stay, and lists are replaced whole, as strategic-merge patches are too), no admission, no
defaulting, no validation, no garbage collection (deleting a Namespace leaves its objects).
`dryRun` is not implemented by kmock; rather than let a dry run silently write, this stand-in
refuses any request that carries it (400).

Usage:

    python kube_standin.py [--without-argo] [--deadline SECONDS] [--request-log FILE]
                           [--watch-max SECONDS]

It prints `READY <url>` on stdout once it listens on 127.0.0.1, then serves until its standard
input closes (the test that started it ended, however it ended), SIGTERM, or the deadline
(default 600 s) passes: it never outlives its test for long.
"""

import argparse
import asyncio
import copy
import json
import re
import signal
import sys
import uuid
from datetime import datetime, timezone
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import enums, references, rendering

# The resources a cluster with Argo Workflows serves, among those an sflow app uses:
# (group/version/plural, kind, namespaced).
CORE = [
    ("v1/namespaces", "Namespace", False),
    ("v1/configmaps", "ConfigMap", True),
    ("v1/serviceaccounts", "ServiceAccount", True),
    ("v1/services", "Service", True),
    ("v1/persistentvolumeclaims", "PersistentVolumeClaim", True),
    ("v1/events", "Event", True),
    ("v1/pods", "Pod", True),
    ("apps/v1/deployments", "Deployment", True),
    ("rbac.authorization.k8s.io/v1/roles", "Role", True),
    ("rbac.authorization.k8s.io/v1/rolebindings", "RoleBinding", True),
    ("networking.k8s.io/v1/networkpolicies", "NetworkPolicy", True),
    ("networking.k8s.io/v1/ingresses", "Ingress", True),
    ("policy/v1/poddisruptionbudgets", "PodDisruptionBudget", True),
    ("autoscaling/v2/horizontalpodautoscalers", "HorizontalPodAutoscaler", True),
    ("coordination.k8s.io/v1/leases", "Lease", True),
]
ARGO = [
    ("argoproj.io/v1alpha1/workflowtemplates", "WorkflowTemplate", True),
    ("argoproj.io/v1alpha1/cronworkflows", "CronWorkflow", True),
    ("argoproj.io/v1alpha1/workflows", "Workflow", True),
    ("argoproj.io/v1alpha1/workflowtaskresults", "WorkflowTaskResult", True),
]
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
APPLY_PATCH = "application/apply-patch+yaml"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
NAMESPACE_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)(?:/(status|finalize))?$")
REASONS = {400: "BadRequest", 404: "NotFound", 409: "AlreadyExists", 422: "Invalid"}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _merge(base: Any, patch: Any) -> Any:
    """kmock's patch semantics (dicts merged recursively, None deletes, the rest replaced)."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(base.get(key), value)
    return out


def _named_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(item, dict) and "name" in item for item in value)


def _strategic(base: Any, patch: Any) -> Any:
    """A strategic-merge patch, turned into a patch kmock applies correctly: lists of named items
    (containers, env, ports, volumes: Kubernetes' `patchMergeKey: name`) are merged by name
    and sent whole, since kmock replaces lists whole."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return {key: _strategic(base.get(key), value) for key, value in patch.items()}
    if _named_list(base) and _named_list(patch):
        merged = [copy.deepcopy(item) for item in base]
        for item in patch:
            for i, existing in enumerate(merged):
                if existing["name"] == item["name"]:
                    merged[i] = _merge(existing, _strategic(existing, item))
                    break
            else:
                merged.append(copy.deepcopy(item))
        return merged
    return copy.deepcopy(patch)


def _replacement(current: Any, new: Any) -> Any:
    """The patch that turns `current` into `new` under kmock's merge (None deletes a key)."""
    if not isinstance(current, dict) or not isinstance(new, dict):
        return copy.deepcopy(new)
    out = {key: _replacement(current.get(key), value) for key, value in new.items()}
    for key in current:
        if key not in new:
            out[key] = None
    return out


def _verb(request: rendering.Request) -> str:
    if request.method == enums.method.GET:
        if request.action == enums.action.WATCH:
            return "watch"
        return "get" if request.name is not None else "list"
    return {
        enums.method.POST: "create",
        enums.method.PATCH: "patch",
        enums.method.PUT: "update",
        enums.method.DELETE: "delete" if request.name is not None else "deletecollection",
    }.get(request.method, str(request.method))


# One resourceVersion counter for the whole server, as etcd's revision.
_LAST_VERSION = [0]


def _next_version() -> str:
    _LAST_VERSION[0] += 1
    return str(_LAST_VERSION[0])


class _BadSelector(Exception):
    pass


def _selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Equality-based label selectors (`k=v`, `k==v`, `k!=v`, `k`, `!k`), comma-separated."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if " in " in term or " notin " in term or "(" in term:
            raise _BadSelector(f"set-based selector `{term}` is not supported by the stand-in")
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "==" in term or "=" in term:
            key, value = term.split("==", 1) if "==" in term else term.split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


class Standin(kmock.KubernetesEmulator):
    """KubernetesEmulator with the GAP fixes described in the module's docstring."""

    request_log: Any = None
    watch_max: float | None = None

    def _log(self, request: rendering.Request) -> None:
        if self.request_log is None or request.resource is None:
            return
        name = request.name
        if name is None and request.method == enums.method.POST and isinstance(request.data, dict):
            name = request.data.get("metadata", {}).get("name")
        auth = request.headers.get("Authorization", "")
        self.request_log.write(json.dumps({
            "verb": _verb(request),
            "group": request.resource.group,
            "resource": request.resource.plural,
            "namespace": request.namespace,
            "name": name,
            "subresource": request.subresource,
            "token": auth.removeprefix("Bearer ").strip(),
        }) + "\n")
        self.request_log.flush()

    def _replace(self, original: rendering.Request, new: rendering.Request) -> rendering.Request:
        # kmock's filters only see the requests it recorded: record the corrected one.
        self._requests[:] = [new if r is original else r for r in self._requests]
        return new

    async def _serve_watch(self, request: rendering.Request) -> Any:
        # GAP: label selectors on watches, and watches that end (`--watch-max`).
        selector = request.params.get("labelSelector")
        loop = asyncio.get_running_loop()
        deadline = None if self.watch_max is None else loop.time() + self.watch_max
        inner = super()._serve_watch(request)
        try:
            while True:
                timeout = None if deadline is None else max(0.0, deadline - loop.time())
                try:
                    item = await asyncio.wait_for(inner.__anext__(), timeout)
                except (StopAsyncIteration, asyncio.TimeoutError):
                    return
                if selector and isinstance(item, dict):
                    labels = item.get("object", {}).get("metadata", {}).get("labels") or {}
                    try:
                        if not _selector_matches(selector, labels):
                            continue
                    except _BadSelector:
                        return
                yield item
        finally:
            try:
                await inner.aclose()
            except (RuntimeError, asyncio.CancelledError):
                pass

    def _kind_of(self, resource: Any) -> str:
        info = self.resources[resource]
        return info.kind or str(resource.plural).capitalize()

    def _stored(self, request: rendering.Request) -> Any:
        key = (request.resource, request.namespace, request.name)
        if key in self.objects and not self.objects[key].deleted:
            return self.objects[key]
        return None

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        # GAP: Kubernetes' machine-readable reasons (clients test `reason == "NotFound"`).
        if isinstance(exc, kmock.KubernetesError) and exc.status in REASONS and exc.reason != "Conflict":
            exc = kmock.KubernetesError(status=exc.status, reason=REASONS[exc.status],
                                        message=exc.message, details={})
        return await super()._render_error(exc)

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        self._log(request)
        if (request.resource is not None and request.method == enums.method.PUT
                and request.name is not None and isinstance(request.data, dict)):
            # GAP: PUT replaces an object, if the resourceVersion it carries is the stored one.
            stored = self._stored(request)
            if stored is None:
                return await self._render_error(kmock.KubernetesError(
                    status=404, reason="NotFound", message=f"{request.name} not found"))
            sent = request.data.get("metadata", {}).get("resourceVersion")
            current_version = stored.raw.get("metadata", {}).get("resourceVersion")
            if sent is not None and sent != current_version:
                return await self._render_error(kmock.KubernetesError(
                    status=409, reason="Conflict",
                    message=(f"Operation cannot be fulfilled on {request.name}: the object has been"
                             " modified; please apply your changes to the latest version and try again")))
            # Served as kmock's update (a PATCH) of the difference.
            request = self._replace(request, attrs.evolve(
                request, method=enums.method.PATCH, action=enums.action.UPDATE,
                data=_replacement(stored.raw, request.data)))
        if (request.resource is not None and request.method == enums.method.PATCH
                and request.headers.get("Content-Type", "").startswith(STRATEGIC_PATCH)
                and isinstance(request.data, dict)):
            stored = self._stored(request)
            if stored is not None:
                # GAP: lists of named items merge by name.
                request = self._replace(request, attrs.evolve(
                    request, data=_strategic(stored.raw, request.data)))
        match = NAMESPACE_PATH.match(request.url.path)
        if match is not None:
            # GAP: kmock reads `/api/v1/namespaces/NAME` as "namespace NAME, no resource".
            original = request
            request = attrs.evolve(
                request,
                resource=references.resource(group="", version="v1", plural="namespaces"),
                namespace=None, name=match[1], subresource=match[2],
                action={
                    enums.method.GET: enums.action.FETCH,
                    enums.method.PATCH: enums.action.UPDATE,
                    enums.method.DELETE: enums.action.DELETE,
                }.get(request.method),
            )
            # kmock's filters only see the requests it recorded: record the corrected one.
            self._requests[:] = [request if r is original else r for r in self._requests]
        if request.resource is not None and request.method in {
            enums.method.POST, enums.method.PATCH, enums.method.PUT, enums.method.DELETE
        } and "dryRun" in request.params:
            # GAP: kmock ignores dryRun and would write. Refuse instead.
            return await self._render_error(kmock.KubernetesError(
                status=400, reason="BadRequest",
                message="the stand-in does not implement dryRun; compute dry runs client-side"))
        if request.resource is not None and isinstance(request.data, dict):
            meta = request.data.setdefault("metadata", {})
            if request.action == enums.action.CREATE:
                # GAP: identity and versions the real API server assigns.
                meta["uid"] = str(uuid.uuid4())
                meta["resourceVersion"] = _next_version()
                meta["generation"] = 1
                meta["creationTimestamp"] = _now()
            elif request.action == enums.action.UPDATE and request.name is not None:
                stored = self._stored(request)
                content_type = request.headers.get("Content-Type", "")
                if stored is None and content_type.startswith(APPLY_PATCH) and not request.subresource:
                    # GAP: server-side apply creates what does not exist.
                    data = copy.deepcopy(request.data)
                    data["metadata"].update({
                        "name": request.name,
                        "uid": str(uuid.uuid4()),
                        "resourceVersion": _next_version(),
                        "generation": 1,
                        "creationTimestamp": _now(),
                    })
                    if request.namespace is not None:
                        data["metadata"]["namespace"] = request.namespace
                    self.objects[request.resource, request.namespace, request.name] = data
                    meta.update({k: data["metadata"][k] for k in
                                 ("uid", "resourceVersion", "generation", "creationTimestamp")})
                elif stored is not None:
                    current = stored.raw
                    merged = _merge(current, request.data)
                    meta["resourceVersion"] = _next_version()
                    generation = current.get("metadata", {}).get("generation", 1)
                    # Real API servers bump `generation` on changes outside metadata and status.
                    spec_changed = any(
                        merged.get(k) != current.get(k)
                        for k in set(merged) | set(current)
                        if k not in ("metadata", "status")
                    )
                    meta["generation"] = generation + 1 if spec_changed and not request.subresource else generation
                    # What identifies an object never changes through a patch.
                    for k in ("uid", "creationTimestamp", "name", "namespace"):
                        if k in current.get("metadata", {}):
                            meta[k] = current["metadata"][k]
        return await super()._handle(request)

    async def _serve_version(self, request: rendering.Request) -> Any:
        result = await super()._serve_version(request)
        if request.resource is not None and request.resource.group == "":
            # GAP: the core group's version is `v1`, not `/v1`.
            result["groupVersion"] = request.resource.version
        return result

    async def _serve_list(self, request: rendering.Request) -> Any:
        result = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        if selector:
            # GAP: kmock ignores label selectors.
            try:
                result["items"] = [
                    item for item in result["items"]
                    if _selector_matches(selector, item.get("metadata", {}).get("labels") or {})
                ]
            except _BadSelector as e:
                raise kmock.KubernetesError(status=400, reason="BadRequest", message=str(e))
        # GAP: lists carry their kind and apiVersion; the version of a list is the latest one.
        resource = request.resource
        group_version = f"{resource.group}/{resource.version}" if resource.group else resource.version
        result["apiVersion"] = group_version
        result["kind"] = f"{self._kind_of(resource)}List"
        result["metadata"] = {"resourceVersion": str(_LAST_VERSION[0])}
        return result



async def serve(with_argo: bool, deadline: float, request_log: str | None = None,
                watch_max: float | None = None) -> None:
    standin = Standin()
    standin.request_log = open(request_log, "a", encoding="utf-8") if request_log else None
    standin.watch_max = watch_max
    for path, kind, namespaced in CORE + (ARGO if with_argo else []):
        standin.resources[path] = kmock.ResourceInfo(kind=kind, namespaced=namespaced, verbs=VERBS)

    async with standin, kmock.Server(standin) as server:
        print(f"READY {server.url}".rstrip("/"), flush=True)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        # The standard input closes when the test that started us ends, even if it crashed.
        stdin_closed = loop.run_in_executor(None, sys.stdin.buffer.read)
        waiters = [asyncio.ensure_future(stop.wait()), stdin_closed]
        await asyncio.wait(waiters, timeout=deadline, return_when=asyncio.FIRST_COMPLETED)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--without-argo", action="store_true",
                        help="serve no argoproj.io resources (a cluster without Argo Workflows)")
    parser.add_argument("--deadline", type=float, default=600.0,
                        help="stop after this many seconds whatever happens (default 600)")
    parser.add_argument("--request-log", metavar="FILE",
                        help="append every API request to FILE as a JSON line")
    parser.add_argument("--watch-max", type=float, metavar="SECONDS",
                        help="end every watch after this many seconds (clients must resume)")
    args = parser.parse_args()
    asyncio.run(serve(with_argo=not args.without_argo, deadline=args.deadline,
                      request_log=args.request_log, watch_max=args.watch_max))
    # The executor thread blocked on stdin would keep the interpreter alive: leave now.
    sys.stdout.flush()
    import os
    os._exit(0)


if __name__ == "__main__":
    main()
