"""A bounded pool of daemon threads for slow calls the service loop must not wait for.

``concurrent.futures.ThreadPoolExecutor`` joins its threads when the interpreter exits, so a
call hanging on a dead SSH connection would keep a stopped daemon alive; the daemon must
exit within seconds of SIGTERM and may be killed at any instant anyway (every call made
here is safe to cut off: see the dispatcher executor's recovery). These threads die with the
process.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class OffLoopPool:
    def __init__(self, workers: int, name: str) -> None:
        self._tasks: queue.SimpleQueue[tuple[Future, Callable[..., Any], tuple] | None] = \
            queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(max(1, workers))]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        self._tasks.put((future, fn, args))
        return future

    def _work(self) -> None:
        while True:
            item = self._tasks.get()
            if item is None:
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to whoever reads the future
                future.set_exception(exc)

    def shutdown(self) -> None:
        """Stop taking calls; calls under way finish in their (daemon) threads."""
        for _ in self._threads:
            self._tasks.put(None)
