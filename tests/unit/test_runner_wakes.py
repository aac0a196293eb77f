"""How a finished runner wakes the engine (``daemon/runner.py`` ``notify``): a byte on the
fork server's pipe when it has one, a file in the wake directory otherwise, and never an
error in the step's own process."""

import contextlib
import os
from pathlib import Path

import pytest

from hpcflow.daemon import runner


@pytest.fixture
def pipe():
    read, write = os.pipe()
    os.set_blocking(write, False)
    yield read, write
    for fd in (read, write):
        with contextlib.suppress(OSError):
            os.close(fd)
    runner.wake_engine_through(None)


def test_a_forked_runner_wakes_the_engine_through_the_pipe_and_makes_no_file(pipe, tmp_path):
    read, write = pipe
    runner.wake_engine_through(write)
    runner.notify({"wake_dir": str(tmp_path)})
    assert os.read(read, 16) == b"."
    assert list(tmp_path.iterdir()) == []


def test_a_full_pipe_means_the_engine_is_woken_already(pipe, tmp_path):
    _, write = pipe
    while True:
        try:
            os.write(write, b"x" * 4096)
        except BlockingIOError:
            break
    runner.wake_engine_through(write)
    runner.notify({"wake_dir": str(tmp_path)})
    assert list(tmp_path.iterdir()) == []


def test_with_the_engine_gone_the_runner_leaves_the_file_its_successor_watches(
        pipe, tmp_path: Path):
    read, write = pipe
    os.close(read)  # the engine that read the pipe ended
    runner.wake_engine_through(write)
    runner.notify({"wake_dir": str(tmp_path)})
    assert [p.name for p in tmp_path.iterdir()] == [f"done-{os.getpid()}"]


def test_without_a_pipe_a_runner_leaves_a_file(tmp_path: Path):
    runner.wake_engine_through(None)
    runner.notify({"wake_dir": str(tmp_path)})
    assert [p.name for p in tmp_path.iterdir()] == [f"done-{os.getpid()}"]
