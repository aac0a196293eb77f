"""Per-step cost as workflows grow (issue 15), beside its floor and two alternatives, in one run.

For each family and size N, hpcflow runs benchmarks/workflows.py (the dflow script of
benchmarks/run.py) at ``local_parallelism`` 2, each run in a fresh ``$HPCFLOW_HOME``:

- ``chain``: N steps in sequence (default N = 200, 1000, 5000);
- ``fanout``: ``with_param=argo_range(N)`` over a tiny OP, then a summing step
  (N = 1000, 10000, 100000);
- ``slices``: the same numbers as one list parameter, ``Slices`` per item (same sizes);
- ``grouped``: the slices with ``group_size=100`` (N items in N/100 steps, each running its
  hundred items one after another in one process: dflow's way with tiny items). Its
  per-step figures are per item, so that it reads beside the others.

Reported per run: seconds from ``submit()`` until the workflow is seen finished (the engine's
start is in it: ``submit()`` starts it), per-step cost = that / N, its ratio to the family's
smallest size (target of issue 15: at most 1.2 at the largest), the steady per-step cost
(from the first OP step's start to the last one's end, from the store: the fixed costs left
out) and the marginal cost between consecutive sizes, the overhead (seconds minus the OPs' own
run time, measured in process) / N as a multiple of the fork-and-reap floor
(benchmarks/fork_floor.py, measured in the same run), the daemon's peak RSS (``VmHWM``, read
before it stops), its CPU time and its fork server's. On the largest fan-out and slices
workflows ``hpcflow status WF`` (and ``--json``), ``hpcflow get WF`` (and ``-o json``) and
``hpcflow steps WF --json`` are timed, with their peak RSS (``wait4``).

The same workflows also run on pydflow's debug mode (the smallest size of each family by
default: it needs minutes there; ``bash benchmarks/setup_pydflow_env.sh``) and on Parsl's
HighThroughputExecutor with 2 workers (benchmarks/parsl_runner.py, a non-durable upper bound;
``bash benchmarks/setup_parsl_env.sh``). A run past ``--timeout`` (``--parsl-timeout``) is
stopped and the larger sizes of that family on that backend are skipped.

Prints one JSON line per measurement, then Markdown tables and the command used.

Usage: .venv/bin/python benchmarks/scaling.py [--only chain,fanout,slices,grouped,hpcflow,floor,
       parsl,pydflow] [--sizes 200,1000 | --sizes chain=200,1000 ...] [--pydflow-sizes ...]
       [--parsl-sizes ...] [--timeout 3600] [--parsl-timeout 600] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import procinfo  # noqa: E402  (beside this file)

FAMILIES = ("chain", "fanout", "slices", "grouped")
PARTS = ("hpcflow", "floor", "parsl", "pydflow")
DEFAULT_SIZES = {"chain": [200, 1000, 5000], "fanout": [1000, 10000, 100000],
                 "slices": [1000, 10000, 100000], "grouped": [1000, 10000, 100000]}
BENCH = Path(os.environ.get("BENCH_VENV", "/tmp/hpcflow-bench/venv-pydflow")).parent
DEFAULT_PYDFLOW = os.environ.get("BENCH_VENV", str(BENCH / "venv-pydflow")) + "/bin/python"
DEFAULT_PARSL = os.environ.get("PARSL_VENV", str(BENCH / "venv-parsl")) + "/bin/python"
TARGET_RATIO = 1.2


def emit(record: dict, sink: list[dict]) -> None:
    sink.append(record)
    print(json.dumps(record), flush=True)


# -- options ---------------------------------------------------------------------------
def parse_sizes(values: list[str] | None, families: list[str],
                defaults: dict[str, list[int]]) -> dict[str, list[int]]:
    """``--sizes 200,1000`` (every family) or ``--sizes chain=200,1000`` (one; repeatable)."""
    sizes = {f: list(defaults[f]) for f in families}
    given: dict[str, list[int]] = {}
    for value in values or []:
        if value.strip().lower() == "none":
            return {f: [] for f in families}
        name, _, numbers = value.rpartition("=")
        targets = [name] if name else list(families)
        if name and name not in FAMILIES:
            raise SystemExit(f"--sizes: no family {name!r} (one of {', '.join(FAMILIES)})")
        parsed = sorted({int(x) for x in numbers.replace(" ", "").split(",") if x})
        if any(n < 1 for n in parsed):
            raise SystemExit("--sizes: sizes are positive integers")
        for family in targets:
            given[family] = parsed
    sizes.update({f: v for f, v in given.items() if f in sizes})
    return sizes


def parse_only(values: list[str] | None) -> tuple[list[str], list[str]]:
    chosen = [v.strip() for value in values or [] for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in FAMILIES + PARTS]
    if unknown:
        raise SystemExit(f"--only: unknown {unknown} (choose from {', '.join(FAMILIES + PARTS)})")
    families = [f for f in FAMILIES if f in chosen] or list(FAMILIES)
    parts = [p for p in PARTS if p in chosen] or list(PARTS)
    return families, parts


# -- running things --------------------------------------------------------------------
def hpcflow_cli() -> list[str]:
    script = Path(sys.executable).parent / "hpcflow"
    return [str(script)] if script.exists() else [sys.executable, "-m", "hpcflow.cli.main"]


def run_logged(cmd: list[str], log_dir: Path, name: str, timeout: float,
               env: dict[str, str] | None = None, gentle: bool = False) -> dict:
    """Run ``cmd`` in a session of its own, stdout and stderr to files; on time-out, stop
    its process group (SIGTERM first with ``gentle``, for a runner that cleans up). The last
    JSON line of its stdout, else an ``error``."""
    out_path, err_path = log_dir / f"{name}.out", log_dir / f"{name}.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env)
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except KeyboardInterrupt:  # its own session: Ctrl-C did not reach it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        except subprocess.TimeoutExpired:
            timed_out = True
            if gentle:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=60)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    lines = out_path.read_text(errors="replace").splitlines()
    found: dict = {}
    for line in reversed(lines):
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                found = dict(json.loads(line))
                break
    if timed_out:
        return {"error": f"timed out after {timeout:.0f} s", **found}
    if not found:
        tail = (err_path.read_text(errors="replace").strip().splitlines() or ["no output"])
        return {"error": f"exit {proc.returncode}: {tail[-1][:300]}"}
    if proc.returncode != 0 and "error" not in found and found.get("correct") is not False:
        found["error"] = f"exit {proc.returncode}"
    return found


def timed_cli(args: list[str], env: dict[str, str], out_dir: Path) -> dict:
    """One ``hpcflow ARGS``: wall seconds, peak RSS (wait4), bytes printed, exit status."""
    out_path, report = out_dir / "cli.out", out_dir / "cli.usage.json"
    with open(out_path, "wb") as out, open(out_dir / "cli.err", "wb") as err:
        # forked from a small launcher: a peak RSS counts the image a child was forked from
        subprocess.run([sys.executable, str(HERE / "peak_rss.py"), str(report),
                        *hpcflow_cli(), *args],
                       stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, check=True)
    return {**json.loads(report.read_text()), "bytes": out_path.stat().st_size}


def engine_pids(home: Path) -> set[int]:
    """The daemon of ``home``: the pid in ``daemon.json`` and the one holding the engine's
    lock (one taken before the daemon wrote its status file)."""
    pids = {procinfo.daemon_pid(home)}
    with contextlib.suppress(Exception):  # the engine's own answer, if this hpcflow has it
        from hpcflow.daemon.engine import engine_pid

        pids.add(engine_pid(home))
    return {p for p in pids if p and procinfo.alive(p)}


def stop_daemon(home: Path, env: dict[str, str], log_dir: Path) -> None:
    """``hpcflow daemon stop``, then wait for the daemon to go (closing a big store may take
    a while); SIGTERM to it after 120 s. Again if a daemon that was starting turns up."""
    for _ in range(3):
        pids = engine_pids(home)
        run_logged([*hpcflow_cli(), "daemon", "stop"], log_dir, "daemon-stop", 180, env=env)
        deadline = time.monotonic() + 120
        while any(procinfo.alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in pids:
            if procinfo.alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        time.sleep(1)  # a daemon being started as the run was stopped takes its lock now
        if not engine_pids(home):
            return


def store_size_kib(home: Path) -> int:
    return sum((home / f"store.db{s}").stat().st_size for s in ("", "-wal")
               if (home / f"store.db{s}").exists()) // 1024


def run_hpcflow(family: str, n: int, args: argparse.Namespace, base: Path,
                cli_here: bool) -> dict:
    work = base / f"hpcflow-{family}-{n}"
    work.mkdir()
    home = work / "hpcflow-home"
    env = dict(os.environ, HPCFLOW_HOME=str(home))
    env.pop("HPCFLOW_LOCAL_PARALLELISM", None)  # the script sets local_parallelism itself
    cmd = [sys.executable, str(HERE / "workflows.py"), "--backend", "hpcflow", "--workflow",
           family, "--n", str(n), "--parallelism", str(args.parallelism), "--work", str(work),
           "--keep-daemon"] + (["--no-sum"] if args.no_sum and family != "chain" else [])
    record: dict = {"measure": "run", "backend": "hpcflow", "family": family, "n": n}
    try:
        result = run_logged(cmd, base, f"hpcflow-{family}-{n}", args.timeout, env=env)
        record.update(result)
        wf_id = result.get("workflow_id") if "error" not in result else None
        if "error" in result:  # what the daemon got to before the time-out
            pids = sorted(engine_pids(home))
            record["procs"] = procinfo.daemon_snapshot(home, pids[0] if pids else None)
            live = timed_cli(["status", "--json"], env, work)
            with contextlib.suppress(ValueError, OSError):
                record["live_status"] = json.loads((work / "cli.out").read_text())
            record["live_status_seconds"] = round(live["seconds"], 3)
            for found in record.get("live_status") or []:
                done = int((found.get("steps") or {}).get("Succeeded") or 0)
                wf_id = found.get("id")
                if done and str(result["error"]).startswith("timed out"):
                    # the rate it was going at (the engine's start included)
                    record["ms_per_succeeded_step_so_far"] = round(args.timeout / done * 1000, 3)
        record["store_kib"] = store_size_kib(home) if home.exists() else None
        if cli_here and wf_id:  # on a timed-out run: the live workflow, as it stands
            record["cli"] = time_cli(wf_id, env, work, args.cli_repeat)
            record["cli_on_live_workflow"] = "error" in result
    finally:
        if home.exists():
            stop_daemon(home, env, base)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return record


def time_cli(wf_id: str, env: dict[str, str], work: Path, repeat: int) -> dict:
    """``status WF``, ``status WF --json``, ``get WF`` (the folded tree), ``get WF -o json``
    (the whole tree), ``steps WF --json``: best wall time of ``repeat``, the largest peak
    RSS, bytes printed."""
    found = {}
    for args in (["status", wf_id], ["status", wf_id, "--json"], ["get", wf_id],
                 ["get", wf_id, "-o", "json"], ["steps", wf_id, "--json"]):
        runs = [timed_cli(args, env, work) for _ in range(repeat)]
        found[" ".join(["hpcflow"] + ["WF" if a == wf_id else a for a in args])] = {
            "best_seconds": round(min(r["seconds"] for r in runs), 3),
            "seconds": [round(r["seconds"], 3) for r in runs],
            "peak_rss_kib": max(r["peak_rss_kib"] for r in runs),
            "bytes": runs[0]["bytes"], "exit": max(r["exit"] for r in runs)}
    return found


def run_pydflow(family: str, n: int, args: argparse.Namespace, base: Path,
                attempt: int = 0) -> dict:
    name = f"pydflow-{family}-{n}" + (f"-again{attempt}" if attempt else "")
    work = base / name
    cmd = [args.pydflow_python, str(HERE / "workflows.py"), "--backend", "dflow", "--workflow",
           family, "--n", str(n), "--parallelism", str(args.parallelism), "--work", str(work)
           ] + (["--no-sum"] if args.no_sum and family != "chain" else [])
    record: dict = {"measure": "run", "backend": "pydflow", "family": family, "n": n}
    try:
        record.update(run_logged(cmd, base, name, args.timeout),
                      backend="pydflow")  # workflows.py calls it by its module, dflow
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return record


def run_parsl(shape: str, n: int, args: argparse.Namespace, base: Path) -> dict:
    work = base / f"parsl-{shape}-{n}"
    cmd = [args.parsl_python, str(HERE / "parsl_runner.py"), "--workflow", shape, "--n",
           str(n), "--workers", str(args.parallelism), "--work", str(work)
           ] + (["--no-sum"] if args.no_sum and shape != "chain" else [])
    record: dict = {"measure": "run", "backend": "parsl", "family": shape, "n": n}
    try:
        record.update(run_logged(cmd, base, f"parsl-{shape}-{n}", args.parsl_timeout,
                                 gentle=True))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return record


def run_floor(args: argparse.Namespace, base: Path, when: str) -> list[dict]:
    cmd = [sys.executable, str(HERE / "fork_floor.py"), "--children", str(args.floor_children),
           "--rounds", "3", "--in-flight", "2", "--in-flight", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    found = [dict(json.loads(line), when=when) for line in proc.stdout.splitlines()
             if line.startswith("{")]
    if not found:
        found = [{"measure": "fork_floor", "when": when,
                  "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}]
    return found


# -- figures ---------------------------------------------------------------------------
def ok(record: dict | None) -> bool:
    return record is not None and "error" not in record and bool(record.get("correct"))


def run_seconds(record: dict | None) -> float | None:
    """Seconds from submit to finished (the submitting script's build is not in it)."""
    if record is None or not ok(record):
        return None
    return float(record["submit_seconds"] if "submit_seconds" in record
                 else record["seconds"])


def derive(runs: dict, floor_ms: float | None, families: list[str]) -> dict:
    """Per-step figures of the hpcflow runs: {(family, n): {...}}."""
    derived: dict = {}
    for family in families:
        sizes = sorted(n for (b, f, n) in runs if b == "hpcflow" and f == family)
        smallest = prev = steady_smallest = None
        for n in sizes:
            record = runs[("hpcflow", family, n)]
            seconds = run_seconds(record)
            if seconds is None:
                derived[(family, n)] = {}
                continue
            per_step = seconds / n * 1000
            if smallest is None:
                smallest = per_step
            op_s = float(record.get("op_seconds") or 0.0)
            overhead = (seconds - op_s) / n * 1000
            procs = record.get("procs") or {}
            daemon = procs.get("daemon") or {}
            fork = procs.get("forkserver") or {}
            figures = {
                "per_step_ms": per_step, "ratio_to_smallest": per_step / smallest,
                "overhead_ms": overhead, "op_seconds": op_s,
                "x_floor": overhead / floor_ms if floor_ms else None,
                "marginal_ms": None, "peak_rss_mb": None, "daemon_cpu_ms_per_step": None,
                "steps_cpu_ms_per_step": None, "first_step_s": None, "steady_ms": None,
                "steady_ratio": None,
            }
            times = record.get("store_times") or {}
            if times.get("first_pod_started") is not None:
                figures["first_step_s"] = times["first_pod_started"]
                steady = (times["last_pod_finished"] - times["first_pod_started"]) / n * 1000
                figures["steady_ms"] = steady
                if steady_smallest is None:
                    steady_smallest = steady
                figures["steady_ratio"] = steady / steady_smallest
            if prev is not None:
                figures["marginal_ms"] = (seconds - prev[1]) / (n - prev[0]) * 1000
            if daemon.get("peak_rss_kib"):
                figures["peak_rss_mb"] = daemon["peak_rss_kib"] / 1024
            if daemon.get("cpu_seconds") is not None:
                figures["daemon_cpu_ms_per_step"] = daemon["cpu_seconds"] / n * 1000
            if fork.get("reaped_children_cpu_seconds") is not None:
                figures["steps_cpu_ms_per_step"] = fork["reaped_children_cpu_seconds"] / n * 1000
            derived[(family, n)] = figures
            prev = (n, seconds)
    return derived


def fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def cell(record: dict | None) -> str:
    if record is None:
        return "not run"
    if ok(record):
        return fmt(run_seconds(record))
    if record.get("error"):
        return str(record["error"])[:40]
    if record.get("phase") not in (None, "Succeeded"):
        return str(record["phase"])
    return f"wrong result {record.get('result')}"[:40]


def report(runs: dict, floors: list[dict], derived: dict, families: list[str],
           sizes: dict[str, list[int]], command: str, started: float) -> None:
    print()
    print(f"command: `{command}`")
    print(f"total wall time of this run: {time.time() - started:.0f} s")
    good_floors = [f for f in floors if "error" not in f]
    if good_floors:
        print()
        print("| fork-and-reap floor | in flight | children | best ms/child | median ms/child "
              "| child CPU ms | parent RSS MB |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for f in good_floors:
            print(f"| {f['when']} | {f['in_flight']} | {f['children']} | "
                  f"{f['ms_per_child_best']:.3f} | {f['ms_per_child_median']:.3f} | "
                  f"{fmt(f.get('child_cpu_ms'), '.3f')} | {f['parent_rss_kib'] / 1024:.1f} |")
    print()
    print("| family | N | hpcflow s | per-step ms | ratio to smallest | first step at s "
          "| steady ms/step | steady ratio | overhead x floor | daemon peak RSS MB "
          "| daemon CPU ms/step | pydflow s | pydflow / hpcflow | Parsl s | hpcflow / Parsl |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
          "| ---: | ---: | ---: |")
    for family in families:
        parsl_shape = "chain" if family == "chain" else "fanout"
        for n in sizes[family]:
            ours = runs.get(("hpcflow", family, n))
            theirs = runs.get(("pydflow", family, n))
            parsl = runs.get(("parsl", parsl_shape, n))
            d = derived.get((family, n)) or {}
            h_s, p_s, q_s = run_seconds(ours), run_seconds(theirs), run_seconds(parsl)
            if ours is None and theirs is None and parsl is None:
                continue
            print(f"| {family} | {n} | {cell(ours)} | {fmt(d.get('per_step_ms'))} | "
                  f"{fmt(d.get('ratio_to_smallest'))} | {fmt(d.get('first_step_s'))} | "
                  f"{fmt(d.get('steady_ms'))} | {fmt(d.get('steady_ratio'))} | "
                  f"{fmt(d.get('x_floor'), '.1f', 'x')} | {fmt(d.get('peak_rss_mb'), '.0f')} | "
                  f"{fmt(d.get('daemon_cpu_ms_per_step'))} | {cell(theirs)} | "
                  f"{fmt(p_s / h_s if p_s and h_s else None, '.1f', 'x')} | {cell(parsl)} | "
                  f"{fmt(h_s / q_s if h_s and q_s else None, '.1f', 'x')} |")
    print()
    for family in families:
        done = [(n, derived[(family, n)]) for n in sizes[family]
                if derived.get((family, n))]
        if len(done) < 2:
            continue
        (n0, d0), (n1, d1) = done[0], done[-1]
        ratio = d1["per_step_ms"] / d0["per_step_ms"]
        verdict = "met" if ratio <= TARGET_RATIO else "not met"
        print(f"- {family}: per-step {d0['per_step_ms']:.2f} ms at N={n0}, "
              f"{d1['per_step_ms']:.2f} ms at N={n1}: ratio {ratio:.2f} "
              f"(target <= {TARGET_RATIO}: {verdict}); steady ratio "
              f"{fmt(d1.get('steady_ratio'))}; marginal ms/step between sizes: " +
              ", ".join(fmt(d.get("marginal_ms")) for _, d in done[1:]))
    ops = [(f, n, d["op_seconds"], run_seconds(runs[("hpcflow", f, n)]))
           for (f, n), d in derived.items() if d]
    if ops:
        worst = max(ops, key=lambda x: x[2] / x[3])
        print(f"- The OPs' own run time (each OP's execute timed in process) is at most "
              f"{worst[2] / worst[3] * 100:.3f}% of a run ({worst[0]} {worst[1]}: "
              f"{worst[2] * 1000:.1f} ms of {worst[3]:.2f} s), so overhead = per-step cost "
              "to the precision shown.")
    print("- per-step ms: (submit to seen finished) / N; the engine's start is in it, which "
          "favours large N less than small. first step at s: when the first OP step started, "
          "after submit() (from the store). steady ms/step: (last OP step's end - first OP "
          "step's start) / N, start-up and the final poll left out; steady ratio: to the "
          "smallest size's.")
    if good_floors:
        print("- overhead x floor: (seconds - OPs' run time) / N over the best 2-in-flight "
              "floor of this run (a chain runs one step at a time: see the 1-in-flight floor).")
    if any(backend == "parsl" for backend, _, _ in runs):
        print("- Parsl s: the workflow on warm workers (its start-up is in the JSON as "
              "startup_seconds); Parsl has no slices: the slices and grouped rows show its "
              "fan-out.")
    for (_backend, family, n), record in sorted(runs.items()):
        live = " (timed out: on the live workflow)" if record.get("cli_on_live_workflow") else ""
        for name, figures in (record.get("cli") or {}).items():
            print(f"- {family} {n}{live}: `{name}` best of {len(figures['seconds'])} "
                  f"{figures['best_seconds']:.3f} s, peak RSS "
                  f"{figures['peak_rss_kib'] / 1024:.0f} MB, printed "
                  f"{figures['bytes'] / 1e6:.2f} MB, exit {figures['exit']}")


def describe_tree() -> dict:
    """The commit the engine under test is at, and the files changed on top of it."""
    info: dict = {}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["commit"] = subprocess.run(["git", "-C", str(HERE.parent), "rev-parse", "HEAD"],
                                        capture_output=True, text=True).stdout.strip()
        info["changed"] = subprocess.run(
            ["git", "-C", str(HERE.parent), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True).stdout.split("\n")
        info["changed"] = [line[3:] for line in info["changed"] if line.strip()]
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", metavar="chain|fanout|slices|grouped|hpcflow|"
                        "floor|parsl|pydflow", help="families and/or parts to run "
                        "(comma-separated or repeated; unnamed axis: all of it)")
    parser.add_argument("--sizes", action="append", metavar="[FAMILY=]N,N,...",
                        help="hpcflow's sizes (default chain=200,1000,5000, fanout and "
                        "slices and grouped =1000,10000,100000)")
    parser.add_argument("--pydflow-sizes", action="append", metavar="[FAMILY=]N,...",
                        help="pydflow's sizes (default: the smallest of each family)")
    parser.add_argument("--parsl-sizes", action="append", metavar="[FAMILY=]N,...",
                        help="Parsl's sizes (default: hpcflow's; fanout, slices and grouped share "
                        "one Parsl fan-out run per size)")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="seconds per hpcflow or pydflow run (3600)")
    parser.add_argument("--parsl-timeout", type=float, default=600,
                        help="seconds per Parsl run (600)")
    parser.add_argument("--pydflow-retries", type=int, default=1,
                        help="runs again a pydflow workflow that ended Failed (1)")
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--no-sum", action="store_true",
                        help="fan-outs without their summing step (all backends)")
    parser.add_argument("--cli", choices=["largest", "all", "none"], default="largest",
                        help="time status/steps on the largest fanout and slices run (default)")
    parser.add_argument("--cli-repeat", type=int, default=3)
    parser.add_argument("--floor-children", type=int, default=2000)
    parser.add_argument("--pydflow-python", default=DEFAULT_PYDFLOW)
    parser.add_argument("--parsl-python", default=DEFAULT_PARSL)
    parser.add_argument("--keep", action="store_true", help="keep the runs' directories")
    args = parser.parse_args()

    families, parts = parse_only(args.only)
    sizes = parse_sizes(args.sizes, families, DEFAULT_SIZES)
    smallest = {f: sizes[f][:1] for f in families}
    pydflow_sizes = parse_sizes(args.pydflow_sizes, families, smallest)
    parsl_sizes = parse_sizes(args.parsl_sizes, families, sizes)
    for part, python, setup in (("pydflow", args.pydflow_python, "setup_pydflow_env.sh"),
                                ("parsl", args.parsl_python, "setup_parsl_env.sh")):
        if part in parts and not Path(python).exists():
            print(f"no {part} environment at {python}: run bash benchmarks/{setup}; "
                  f"{part} is left out", file=sys.stderr)
            parts.remove(part)

    command = shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    started = time.time()
    base = Path(tempfile.mkdtemp(prefix="hpcflow-scaling-"))
    sink: list[dict] = []
    emit({"measure": "setup", "command": command, "date": datetime.datetime.now().isoformat(
        timespec="seconds"), "nproc": os.cpu_count(), "loadavg": os.getloadavg(),
        "python": sys.version.split()[0], "families": families, "parts": parts,
        "sizes": sizes, "pydflow_sizes": pydflow_sizes, "parsl_sizes": parsl_sizes,
        "logs": str(base), **describe_tree()}, sink)

    floors: list[dict] = []
    runs: dict = {}
    try:
        if "floor" in parts:
            for record in run_floor(args, base, "start"):
                floors.append(record)
                emit(record, sink)
        given_up: set = set()  # (backend, family): a smaller size timed out
        parsl_done: set = set()
        for family in families:
            parsl_shape = "chain" if family == "chain" else "fanout"
            cli_sizes = {"largest": sizes[family][-1:], "all": sizes[family],
                         "none": []}[args.cli] if family != "chain" else []
            todo = sorted(set(sizes[family] if "hpcflow" in parts else [])
                          | set(pydflow_sizes[family] if "pydflow" in parts else [])
                          | set(parsl_sizes[family] if "parsl" in parts else []))
            for n in todo:
                if "hpcflow" in parts and n in sizes[family]:
                    if ("hpcflow", family) in given_up:
                        record = {"measure": "run", "backend": "hpcflow", "family": family,
                                  "n": n, "error": "skipped: a smaller size timed out"}
                    else:
                        record = run_hpcflow(family, n, args, base, n in cli_sizes)
                    runs[("hpcflow", family, n)] = record
                    emit(record, sink)
                    if str(record.get("error", "")).startswith("timed out"):
                        given_up.add(("hpcflow", family))
                if ("parsl" in parts and n in parsl_sizes[family]
                        and (parsl_shape, n) not in parsl_done):
                    parsl_done.add((parsl_shape, n))
                    if ("parsl", parsl_shape) in given_up:
                        record = {"measure": "run", "backend": "parsl", "family": parsl_shape,
                                  "n": n, "error": "skipped: a smaller size timed out"}
                    else:
                        record = run_parsl(parsl_shape, n, args, base)
                    runs[("parsl", parsl_shape, n)] = record
                    emit(record, sink)
                    if str(record.get("error", "")).startswith("timed out"):
                        given_up.add(("parsl", parsl_shape))
                if "pydflow" in parts and n in pydflow_sizes[family]:
                    if ("pydflow", family) in given_up:
                        record = {"measure": "run", "backend": "pydflow", "family": family,
                                  "n": n, "error": "skipped: a smaller size timed out"}
                    else:
                        record = run_pydflow(family, n, args, base)
                        earlier: list[dict] = []
                        # pydflow 1.8.134's debug mode can fail an item on its own: a pool
                        # worker reads the loop's "children" file (get_children, no lock)
                        # while another rewrites it under its lock: JSONDecodeError
                        while (record.get("phase") == "Failed"
                               and len(earlier) < args.pydflow_retries):
                            earlier.append({k: record.get(k) for k in ("phase", "seconds")})
                            record = run_pydflow(family, n, args, base, len(earlier))
                        if earlier:
                            record["earlier_attempts"] = earlier
                    runs[("pydflow", family, n)] = record
                    emit(record, sink)
                    if str(record.get("error", "")).startswith("timed out"):
                        given_up.add(("pydflow", family))
        if "floor" in parts and runs:
            for record in run_floor(args, base, "end"):
                floors.append(record)
                emit(record, sink)
    except KeyboardInterrupt:
        print("interrupted: reporting what ran", file=sys.stderr)
    floor_ms = min((f["ms_per_child_best"] for f in floors
                    if "error" not in f and f["in_flight"] == 2), default=None)
    derived = derive(runs, floor_ms, families)
    for (family, n), figures in sorted(derived.items()):
        if figures:
            emit({"measure": "per_step", "backend": "hpcflow", "family": family, "n": n,
                  "floor_ms": floor_ms, **{k: (round(v, 4) if isinstance(v, float) else v)
                                           for k, v in figures.items()}}, sink)
    (base / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sink))
    report(runs, floors, derived, families, sizes, command, started)
    print(f"\nJSON lines also in {base / 'results.jsonl'}; logs of each run in {base}")
    failed = [k for k, r in runs.items() if not ok(r)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
