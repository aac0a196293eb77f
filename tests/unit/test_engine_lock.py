"""An engine starting while a command looks whether one runs (``engine_pid`` holds a shared
lock on the engine's lock file for a moment: every ``hpcflow status`` does) still takes the
lock; only a lock held on and on is another engine's. A CI run lost a workflow to that race:
its only engine read the moment's probe as another engine and exited."""

import fcntl
import os
import threading
import time

from hpcflow.daemon import engine


def _probe_for(path, seconds: float) -> threading.Thread:
    """Hold a shared lock on ``path`` for ``seconds``, as a probe that was slow."""
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)

    def release() -> None:
        time.sleep(seconds)
        os.close(fd)

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_a_probe_does_not_turn_a_starting_engine_away(tmp_path):
    lock = engine._host_file(tmp_path, engine.LOCK_FILE)
    lock.write_text("")
    probe = _probe_for(lock, 0.05)
    fd = engine.try_lock(tmp_path)
    probe.join()
    assert fd is not None, "the engine took the probe for another engine"
    assert engine.engine_pid(tmp_path) is None or engine.engine_pid(tmp_path) == os.getpid()
    os.close(fd)


def test_an_engine_that_holds_the_lock_keeps_others_out(tmp_path):
    first = engine.try_lock(tmp_path)
    assert first is not None
    try:
        pid = os.fork()
        if pid == 0:  # another process: flock is per open file, so a child tries for real
            os._exit(0 if engine.try_lock(tmp_path) is None else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(first)
