"""Faults a test can inject per image, ending pods as Kubernetes and Argo v3.7.18 end them.

* ``OOMKilled``: the container is SIGKILLed; reason OOMKilled, exit code 137; Argo's node
  message for a failed main container is ``main: OOMKilled (exit code 137)``
  (workflow/controller/operator.go inferFailedReason: ``"%s (exit code %d)"`` prefixed by
  the container name; test/e2e/cli_test.go expects ``main: Error (exit code 1)``).
* ``ImagePullBackOff``: the pod never starts; it stays Pending and Argo shows the waiting
  reason and message (operator.go getPendingReason: ``REASON: MESSAGE``) with the kubelet's
  text ``Back-off pulling image "IMAGE"``, until the pod's active deadline ends it.
* ``Evicted``: the kubelet kills the pod; pod phase Failed, reason Evicted, and the pod's
  message (kubelet eviction manager, also in Argo's operator_test.go), which Argo copies into
  the node: Failed, ``The node was low on resource: memory. ...``.
* ``Preempted``: the scheduler deletes the pod to make room; Argo finds the pod gone and marks
  the node Error with ``pod deleted`` (operator.go podReconciliation).
* ``Unschedulable``: no node fits the pod; it stays Pending, no process started, and Argo shows
  the PodScheduled condition's reason and message (``Unschedulable: 0/3 nodes are available:
  3 Insufficient cpu.``, the scheduler's wording) until the pod's deadline, a terminate or a
  delete. Many such pods cost nothing here: the tests' way to hold hundreds of steps live.
"""

from __future__ import annotations

import threading

KINDS = ("OOMKilled", "ImagePullBackOff", "Evicted", "Preempted", "Unschedulable")
UNSCHEDULABLE_MESSAGE = "Unschedulable: 0/3 nodes are available: 3 Insufficient cpu."

OOM_EXIT = 137
EVICTED_MESSAGE = ("The node was low on resource: memory. Threshold quantity: 100Mi, "
                   "available: 51200Ki. Container main was using 2Gi, request is 0, "
                   "has larger consumption of memory. ")
POD_DELETED = "pod deleted"


def image_pull_message(image: str) -> str:
    return f'ImagePullBackOff: Back-off pulling image "{image}"'


class Faults:
    """Image -> fault kind, set and cleared through the control routes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_image: dict[str, str] = {}

    def set(self, image: str, kind: str | None) -> None:
        if kind is not None and kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
        with self._lock:
            if kind is None:
                self._by_image.pop(image, None)
            else:
                self._by_image[image] = kind

    def clear(self) -> None:
        with self._lock:
            self._by_image.clear()

    def for_image(self, image: str) -> str | None:
        with self._lock:
            return self._by_image.get(image)

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return dict(self._by_image)
