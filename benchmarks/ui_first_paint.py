"""How fast ``hpcflow ui`` shows a large finished workflow in a real browser.

Runs a with_param fan-out of N steps (default 10,000) on the local engine
(``benchmarks/workflows.py --workflow fanout --no-sum``), starts ``hpcflow ui`` on it, and
opens the workflow's page in headless Chromium (Debian's ``chromium`` and
``chromium-driver``) several times, each a fresh navigation. For each it reads, in ms
from the start of the navigation (the Performance API):

- ``first_paint`` / ``first_contentful_paint``: ``performance.getEntriesByType('paint')``;
- ``graph_shown``: the page's ``graph-shown`` mark (the SVG is in the page), and
  ``graph_painted``: the frame after it (laid out and painted).

Then it times the API's answers the page asks for (best of 5, in process over HTTP with the
token): the workflow, the full phase list (the first poll), an empty poll, the graph's SVG,
a page of 2,000 steps, the workflow list.

Usage: .venv/bin/python benchmarks/ui_first_paint.py [--steps 10000] [--repeat 5]
       [--work DIR] (a DIR holding a finished run is reused)

Prints one JSON object; not a test (no timed assertion): the figures go to
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def finished_fanout(work: Path, steps: int) -> tuple[Path, str, float]:
    """(home, workflow id, seconds the run took: 0 if reused) of a finished fan-out of
    ``steps`` in ``work``, run there first if there is none."""
    home = work / "hpcflow-home"
    found = _finished(home, steps)
    if found:
        return home, found, 0.0
    begin = time.perf_counter()
    done = subprocess.run([sys.executable, str(HERE / "workflows.py"), "--backend", "hpcflow",
                           "--workflow", "fanout", "--n", str(steps), "--no-sum",
                           "--work", str(work)], capture_output=True, text=True, check=False)
    found = _finished(home, steps)
    if done.returncode or not found:
        raise SystemExit(f"the fan-out failed: {done.stderr[-2000:]}")
    return home, found, time.perf_counter() - begin


def _finished(home: Path, steps: int) -> str | None:
    """The id of a succeeded workflow of ``steps`` leaf steps in ``home`` (read-only)."""
    if not (home / "store.db").exists():
        return None
    conn = sqlite3.connect(f"file:{home / 'store.db'}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT w.id FROM workflows w WHERE phase='Succeeded' AND "
                           "(SELECT count(*) FROM steps s WHERE s.workflow_id=w.id AND "
                           "s.type='Pod') = ?", (steps,)).fetchone()
    finally:
        conn.close()
    return row[0] if row else None


def start_ui(home: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "hpcflow.cli.main", "ui", "--quiet"],
                            env=dict(os.environ, HPCFLOW_HOME=str(home)),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:  # type: ignore[union-attr]
        found = re.search(r"open:\s+(http://localhost:\d+/\?token=\S+)", line)
        if found:
            return proc, found.group(1)
    raise SystemExit("hpcflow ui printed no URL")


def browser() -> object:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='hpcflow-bench-')}")
    options.add_argument("--window-size=1400,900")
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"),
                            options=options)


PAINTS = """
const paint = Object.fromEntries(performance.getEntriesByType('paint')
    .map(e => [e.name, e.startTime]));
const mark = n => (performance.getEntriesByName(n)[0] || {}).startTime ?? null;
return {first_paint: paint['first-paint'] ?? null,
        first_contentful_paint: paint['first-contentful-paint'] ?? null,
        graph_shown: mark('graph-shown'), graph_painted: mark('graph-painted'),
        boxes: document.querySelectorAll('#graph [data-step-id]').length};
"""


def page_loads(url: str, wf_id: str, repeat: int) -> list[dict]:
    driver = browser()
    base = url.split("?")[0]
    try:
        driver.get(url)  # sets the cookie
        loads = []
        for _ in range(repeat):
            driver.get("about:blank")
            driver.get(f"{base}#/wf/{wf_id}")  # a fresh navigation: a new document
            deadline = time.monotonic() + 120
            while True:
                found = driver.execute_script(PAINTS)
                if found["graph_painted"] is not None:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"the graph was not shown within 120 s: {found}")
                time.sleep(0.05)
            loads.append({k: (round(v, 1) if isinstance(v, float) else v)
                          for k, v in found.items()})
        return loads
    finally:
        driver.quit()


def api_times(url: str, wf_id: str) -> dict[str, dict]:
    port = int(re.search(r":(\d+)/", url).group(1))  # type: ignore[union-attr]
    token = url.split("token=")[1]
    cursor = None
    paths = {"workflow": f"/api/workflows/{wf_id}",
             "phases (first poll: every step)": f"/api/workflows/{wf_id}/phases",
             "phases (a poll, nothing moved)": None,
             "graph.svg (fold 30)": f"/api/workflows/{wf_id}/graph.svg?fold=30",
             "graph.svg (fold 1000)": f"/api/workflows/{wf_id}/graph.svg?fold=1000",
             "steps (a page of 2000)": f"/api/workflows/{wf_id}/steps?limit=2000",
             "workflow list": "/api/workflows"}
    found: dict[str, dict] = {}
    for name, path in paths.items():
        if path is None:
            path = f"/api/workflows/{wf_id}/phases?event={cursor[0]}&step={cursor[1]}"  # type: ignore[index]
        best, size = float("inf"), 0
        for _ in range(5):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            begin = time.perf_counter()
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}",
                                               "Host": f"127.0.0.1:{port}"})
            body = conn.getresponse().read()
            best = min(best, time.perf_counter() - begin)
            size = len(body)
            conn.close()
        if name.startswith("phases (first"):
            data = json.loads(body)
            cursor = (data["cursor"], data["newest_step"])
        found[name] = {"ms": round(best * 1000, 1), "bytes": size}
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-ui-"))
    work.mkdir(parents=True, exist_ok=True)
    home, wf_id, ran = finished_fanout(work.resolve(), args.steps)
    proc, url = start_ui(home)
    try:
        loads = page_loads(url, wf_id, args.repeat)
        api = api_times(url, wf_id)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        subprocess.run([sys.executable, "-m", "hpcflow.cli.main", "daemon", "stop"],
                       env=dict(os.environ, HPCFLOW_HOME=str(home)), capture_output=True,
                       check=False)
    median = {k: statistics.median(x[k] for x in loads)
              for k in ("first_paint", "first_contentful_paint", "graph_shown",
                        "graph_painted")}
    print(json.dumps({"steps": args.steps, "workflow": wf_id, "work": str(work),
                      "run_seconds": round(ran, 1), "loads_ms": loads,
                      "median_ms": median, "api": api}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
