"""``hpcflow logs WF -f`` reads, each interval, only the steps it still follows: a step
whose end it saw, and whose log it read after, is not asked about again (before, every
interval re-read each selected step's row, its jobs and its log file: 20,000 queries and
10,000 file reads per second on a 10,000-step workflow)."""

from pathlib import Path

from click.testing import CliRunner

from daemon.store import Store
from hpcflow.cli import logs_cmd
from hpcflow.daemon import client

ENDED = 1500


def _workflow(home: Path) -> tuple[Store, int]:
    """A Running workflow: ``ENDED`` steps that ended (each with its job and a one-line log)
    and one step still running; its id."""
    store = Store.open(home)
    store.insert_workflow("w-1", "w", {"name": "w"}, {}, {}, {})
    with store.write() as conn:
        store.set_workflow_phase(conn, "w-1", "Running")

        def add(parent: int, name: str, type_: str, phase: str) -> int:
            step_id = store.insert_step(conn, "w-1", parent, name, name, "t", type_, phase,
                                        {"parameters": {}, "artifacts": {}}, None)
            assert step_id is not None
            if type_ == "Pod":
                step_dir = home / "runs" / name
                step_dir.mkdir(parents=True)
                (step_dir / "log.txt").write_text(f"{name} says done\n")
                job = store.insert_job_intent(conn, step_id, "w-1", "local", f"job-{name}",
                                              str(step_dir))
                store.set_job_submitted(conn, job, "forked")
            return step_id

        root = add(0, "w", "Steps", "Running")
        for i in range(ENDED):
            add(root, f"s{i}", "Pod", "Succeeded")
        running = add(root, "live", "Pod", "Running")
    return store, running


def test_follow_asks_only_about_the_steps_it_still_follows(tmp_path, monkeypatch):
    home = tmp_path / "home"
    writer, running = _workflow(home)
    reader = client.store_for(home)  # the connection the command reads through
    statements: list[str] = []
    reader.conn.set_trace_callback(statements.append)
    per_interval: list[int] = []

    def interval_passes(seconds: float) -> None:
        per_interval.append(len(statements))
        statements.clear()
        tick = len(per_interval)
        with (home / "runs" / "live" / "log.txt").open("a") as log:
            log.write(f"tick {tick}\n")
        if tick == 3:  # the last step and the workflow end
            with writer.write() as conn:
                writer.set_step_phase(conn, running, "Running", "Succeeded", workflow_id="w-1")
                writer.set_workflow_phase(conn, "w-1", "Succeeded")

    monkeypatch.setattr(logs_cmd.time, "sleep", interval_passes)
    monkeypatch.setenv("HPCFLOW_HOME", str(home))
    done = CliRunner().invoke(logs_cmd.logs, ["w-1", "-f", "--interval", "0.05"])
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    # every ended step's log once, then the running one's lines as they came
    assert sorted(line for line in lines if "says done" in line and "live" not in line) == \
        sorted(f"[s{i}] s{i} says done" for i in range(ENDED))
    assert [line for line in lines if line.startswith("[live]")] == \
        ["[live] live says done", "[live] tick 1", "[live] tick 2", "[live] tick 3"]
    # the first interval reads the workflow's steps; the next ones only the live step's
    # (the workflow's row, new steps, its phase, its job): not the 1500 ended ones again
    assert len(per_interval) == 3
    assert per_interval[1] < 20 and per_interval[2] < 20, per_interval
    writer.close()
