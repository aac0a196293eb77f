"""``hpcflow ui`` driven by a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, installed by tests/services/up.sh) through Selenium, against the real
``hpcflow ui`` command over a home whose workflows the real engine runs.

It lists workflows, opens a running one, sees its step turn from Running to Succeeded
without a reload (the page is the same page: a marker set in it survives), reads and
follows the step's log, retries a failed step from the step panel, and writes the
screenshots README links: the list, a 200-step DAG and a 1000-slice workflow (into docs/ui/
with ``HPCFLOW_UPDATE_SCREENSHOTS=1``).

Skipped, saying why, only where Chromium or Selenium is missing outside CI; CI installs
them, so there a missing browser fails the run instead of hiding it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, run_cli, wait_until
from tests.e2e.ui_scripts import ARTIFACT, DAG200, FLAKY, LIVE, SLICES

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
try:
    import selenium  # noqa: F401
    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER and HAVE_SELENIUM) and os.environ.get("CI") != "true",
    reason="headless Chromium and Selenium are needed (apt-get install chromium "
           "chromium-driver; pip install -e '.[dev]'): tests/services/up.sh installs them")

#: Where the screenshots go: the README's copies in docs/ui/ when HPCFLOW_UPDATE_SCREENSHOTS=1
#: (so a test run leaves the working tree as it was), else the test's own directory.
SHOTS = REPO / "docs" / "ui" if os.environ.get("HPCFLOW_UPDATE_SCREENSHOTS") == "1" else None
#: Chromium's switches for a closed network: without them it waits on connections it tries.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def chromium(width: int = 1400, height: int = 900) -> Any:
    """A fresh headless Chromium (its own profile, removed with the driver's quit)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or "chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='hpcflow-chromium-')}")
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(DRIVER or "chromedriver"), options=options)
    driver.set_page_load_timeout(120)
    driver.set_script_timeout(120)
    return driver


def start_ui(home: Path, cwd: Path) -> tuple[subprocess.Popen, str]:
    """``hpcflow ui --port 0`` as a user starts it; (the process, the URL it printed)."""
    env = dict(os.environ, HPCFLOW_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-m", "hpcflow.cli.main", "ui", "--port", "0",
                             "--quiet"], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:  # type: ignore[union-attr]
        found = re.search(r"open:\s+(http://localhost:\d+/\?token=\S+)", line)
        if found:
            return proc, found.group(1)
    raise AssertionError(f"hpcflow ui printed no URL (exit {proc.wait()})")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("uibrowser")
    home = tmp / "home"
    for name, text in (("live.py", LIVE), ("flaky.py", FLAKY), ("dag.py", DAG200),
                       ("slices.py", SLICES), ("artifact.py", ARTIFACT)):
        (tmp / name).write_text(text)
    done = run_cli(["run", "dag.py"], home, tmp)  # a finished workflow (and the home)
    assert done.returncode == 0, done.stderr
    proc, url = start_ui(home, tmp)
    driver = chromium()
    try:
        driver.get(url)  # the token becomes a cookie; the address bar loses it
        wait_until(lambda: "token=" not in driver.current_url, "the token to leave the URL",
                   timeout=60)
        yield {"home": home, "tmp": tmp, "driver": driver, "base": url.split("?")[0],
               "dag": done.stdout.split()[0]}
    finally:
        driver.quit()
        proc.terminate()
        proc.wait(timeout=60)
        run_cli(["daemon", "stop"], home, tmp)


def js(site: dict, script: str, *args: Any) -> Any:
    return site["driver"].execute_script(script, *args)


def node_class(site: dict, step_id: int) -> str:
    return str(js(site, "const n = document.querySelector(`[data-step-id='${arguments[0]}']`);"
                        "return n ? n.getAttribute('class') : '';", str(step_id)))


def step_id_named(site: dict, name: str) -> int | None:
    """The id of the shown step whose label is ``name`` (None while it is not shown)."""
    found = js(site, "for (const n of document.querySelectorAll('[data-step-id]')) {"
                     "  const t = n.querySelector('text') || n;"
                     "  if (t.textContent.trim() === arguments[0]) return n.dataset.stepId ||"
                     "    n.getAttribute('data-step-id'); }"
                     "return null;", name)
    return int(found) if found else None


def click_step(site: dict, step_id: int) -> None:
    from selenium.webdriver.common.by import By

    site["driver"].find_element(By.CSS_SELECTOR, f"[data-step-id='{step_id}']").click()


def submit(site: dict, script: str, *args: str) -> str:
    done = run_cli(["submit", script, *args], site["home"], site["tmp"])
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


def test_the_list_shows_the_workflows(site: dict) -> None:
    driver = site["driver"]
    driver.get(site["base"] + "#/")
    wait_until(lambda: js(site, f"return !!document.querySelector("
                                f"\"tr[data-wf-id='{site['dag']}']\")"),
               "the finished DAG in the list", timeout=60)
    row = js(site, f"return document.querySelector(\"tr[data-wf-id='{site['dag']}']\")"
                   ".textContent")
    assert "Succeeded" in row and "200 Succeeded" in row
    # the phase filter keeps only what it names
    driver.get(site["base"] + "#/?phase=Failed")
    wait_until(lambda: "no workflow matches" in js(site, "return document.getElementById("
                                                         "'workflows').textContent"),
               "the filtered list to be empty", timeout=60)


def test_a_running_step_turns_succeeded_without_a_reload_and_its_log_follows(
        site: dict) -> None:
    go = site["tmp"] / "go"
    wf = submit(site, "live.py", str(go))
    driver = site["driver"]
    driver.get(site["base"] + f"#/wf/{wf}")
    step = wait_until(lambda: step_id_named(site, "hold"), "the step 'hold' on the graph",
                      timeout=120)
    wait_until(lambda: "phase-Running" in node_class(site, step), "the step shown Running",
               timeout=120)
    js(site, "window.__stayed = 42;")  # gone if the page reloads
    click_step(site, step)
    wait_until(lambda: "waiting for go" in js(site, "return document.getElementById('log')"
                                                    "?.textContent || ''"),
               "the step's log in the panel", timeout=120)
    go.write_text("go")
    wait_until(lambda: "phase-Succeeded" in node_class(site, step),
               "the step shown Succeeded", timeout=120)
    wait_until(lambda: "got go" in js(site, "return document.getElementById('log')"
                                            ".textContent"),
               "the log followed to its last line", timeout=120)
    # a group's counts are the server's text: the picture is fetched again, still no reload
    wait_until(lambda: "1 Succeeded" in js(site, "return [...document.querySelectorAll("
                                                 "'#graph .group-label')].map(t => "
                                                 "t.textContent).join(' ')"),
               "the root group's counts updated", timeout=120)
    assert js(site, "return window.__stayed") == 42, "the page was reloaded"
    assert "Succeeded" in js(site, "return document.getElementById('wf-head').textContent")
    assert "selected" in node_class(site, step)  # the open step stays marked


def test_a_failed_step_is_retried_from_the_page(site: dict) -> None:
    from selenium.webdriver.common.by import By

    flag = site["tmp"] / "flag"
    wf = submit(site, "flaky.py", str(flag))
    driver = site["driver"]
    driver.get(site["base"] + f"#/wf/{wf}")
    step = wait_until(lambda: step_id_named(site, "flaky"), "the step 'flaky'", timeout=120)
    wait_until(lambda: "phase-Failed" in node_class(site, step), "the step shown Failed",
               timeout=120)
    click_step(site, step)
    button = wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, ".act-retry-step"),
                        "the panel's retry button", timeout=60)[0]
    assert "the flag file is missing" in js(site, "return document.getElementById("
                                                  "'step-info').textContent")
    flag.write_text("here")
    button.click()
    wait_until(lambda: "requested" in js(site, "return document.getElementById('notice')"
                                               ".textContent"),
               "the retry acknowledged", timeout=60)
    wait_until(lambda: "phase-Succeeded" in node_class(site, step),
               "the retried step shown Succeeded", timeout=180)
    done = run_cli(["status", wf, "--json"], site["home"], site["tmp"])
    assert '"Succeeded"' in done.stdout


def test_suspend_resume_and_terminate_from_the_workflow_page(site: dict) -> None:
    """The header's buttons insert the CLI's requests; the engine acts and the page shows it
    (each button enabled only where it applies; Terminate asks first)."""
    from selenium.webdriver.common.by import By

    wf = submit(site, "live.py", str(site["tmp"] / "never"))
    driver = site["driver"]
    driver.get(site["base"] + f"#/wf/{wf}")
    step = wait_until(lambda: step_id_named(site, "hold"), "the step 'hold'", timeout=120)
    wait_until(lambda: "phase-Running" in node_class(site, step), "the step Running",
               timeout=120)

    def head() -> str:
        return str(js(site, "return document.getElementById('wf-head').textContent"))

    def button(kind: str) -> Any:
        found = driver.find_elements(By.CSS_SELECTOR, f".act-{kind}")
        return found[0] if found and found[0].is_enabled() else None

    assert button("resume") is None and button("retry") is None
    wait_until(lambda: button("suspend"), "Suspend enabled", timeout=60).click()
    wait_until(lambda: "(suspended)" in head(), "the workflow shown suspended", timeout=120)
    assert button("suspend") is None
    wait_until(lambda: button("resume"), "Resume enabled", timeout=60).click()
    wait_until(lambda: "(suspended)" not in head(), "the workflow resumed", timeout=120)
    wait_until(lambda: button("terminate"), "Terminate enabled", timeout=60).click()
    driver.switch_to.alert.accept()  # "Terminate WF?"
    wait_until(lambda: "Terminated" in head(), "the workflow shown Terminated", timeout=180)
    wait_until(lambda: "phase-Running" not in node_class(site, step),
               "the step no longer shown Running", timeout=120)
    assert button("retry") is not None and button("terminate") is None
    done = run_cli(["status", wf, "--json"], site["home"], site["tmp"])
    assert '"Terminated"' in done.stdout


def test_the_step_panel_shows_values_keys_and_downloads_the_artifact(site: dict) -> None:
    """Outputs with their sizes, the artifact's storage key, and its download link, which
    the page's own session (the cookie) fetches as a gzip archive."""
    done = run_cli(["run", "artifact.py"], site["home"], site["tmp"])
    assert done.returncode == 0, done.stderr
    wf = done.stdout.split()[0]
    driver = site["driver"]
    driver.get(site["base"] + f"#/wf/{wf}")
    step = wait_until(lambda: step_id_named(site, "make"), "the step 'make'", timeout=120)
    click_step(site, step)
    wait_until(lambda: js(site, "return !!document.querySelector('#step-info a[download]')"),
               "the artifact's download link", timeout=60)
    info = js(site, "return document.getElementById('step-info').textContent")
    assert "Outputs" in info and "Output artifacts" in info and "local" in info
    outputs = js(site, "return [...document.querySelectorAll('#step-info table.params tr')]"
                       ".map(r => r.textContent)")
    assert any(row.startswith("y") and "2 B" in row and "42" in row for row in outputs), outputs
    key = js(site, "return document.querySelector('#step-info table.artifacts code.key')"
                   ".textContent")
    assert key and ".." not in key
    got = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const a = document.querySelector('#step-info a[download]');"
        "fetch(a.href, {credentials: 'same-origin'}).then(async r => done({status: r.status,"
        " type: r.headers.get('Content-Type'), size: (await r.arrayBuffer()).byteLength,"
        " href: a.getAttribute('href')}));")
    assert got["status"] == 200 and got["type"] == "application/gzip" and got["size"] > 20, got
    assert got["href"].endswith(f"/steps/{step}/artifacts/out")


def test_screenshots_of_the_list_a_200_step_dag_and_1000_slices(site: dict) -> None:
    from selenium.webdriver.support.ui import Select

    sliced = run_cli(["run", "slices.py", "1000"], site["home"], site["tmp"], timeout=600)
    assert sliced.returncode == 0, sliced.stderr
    slices_id = sliced.stdout.split()[0]
    shots = SHOTS or site["tmp"] / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    driver = site["driver"]
    driver.get(site["base"] + "#/")
    wait_until(lambda: js(site, f"return !!document.querySelector("
                                f"\"tr[data-wf-id='{slices_id}']\")"),
               "every workflow in the list", timeout=60)
    driver.save_screenshot(str(shots / "list.png"))

    driver.set_window_size(1800, 1100)
    driver.get(site["base"] + f"#/wf/{site['dag']}")
    wait_until(lambda: step_id_named(site, "t0-0"), "the DAG drawn", timeout=120)
    Select(driver.find_element("id", "fold")).select_by_value("300")  # all 200 tasks
    wait_until(lambda: js(site, "return document.querySelectorAll("
                                "'#graph [data-step-id]').length") >= 200,
               "all 200 tasks drawn", timeout=120)
    driver.save_screenshot(str(shots / "dag-200.png"))

    driver.set_window_size(1400, 900)
    driver.get(site["base"] + f"#/wf/{slices_id}")
    wait_until(lambda: js(site, "return !!document.querySelector('#graph .more')"),
               "the slices drawn, folded", timeout=120)
    assert "1000 Succeeded" in js(site, "return document.getElementById('graph').textContent")
    driver.save_screenshot(str(shots / "slices-1000.png"))
    for name in ("list.png", "dag-200.png", "slices-1000.png"):
        assert (shots / name).stat().st_size > 10_000, name


def test_a_group_collapses_to_its_counts_and_opens_again(site: dict) -> None:
    """A group's panel closes its box in the graph (its counts stay, its members go) and
    opens it again; the rest of the graph is left as it was."""
    from selenium.webdriver.common.by import By

    done = run_cli(["run", "slices.py", "12"], site["home"], site["tmp"], timeout=600)
    assert done.returncode == 0, done.stderr
    wf = done.stdout.split()[0]
    driver = site["driver"]
    driver.get(site["base"] + f"#/wf/{wf}")
    wait_until(lambda: step_id_named(site, "sum"), "the graph drawn", timeout=120)
    shown = "return document.querySelectorAll('#graph [data-step-id]').length"
    before = js(site, shown)
    assert before >= 13  # the 12 slices and the sum
    group = js(site, "for (const g of document.querySelectorAll('#graph [data-group-id]'))"
                     "  if (g.textContent.includes('· slices')) return g.getAttribute("
                     "'data-group-id'); return null;")
    assert group, "no slices group on the graph"
    driver.find_element(By.CSS_SELECTOR, f"[data-group-id='{group}'] .group-label").click()
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, ".act-collapse"),
               "the group's collapse button", timeout=60)[0].click()
    closed = ("return !!document.querySelector("
              f"\"#graph .group.collapsed[data-group-id='{group}']\")")
    wait_until(lambda: js(site, closed), "the group drawn closed", timeout=60)
    assert js(site, shown) == before - 12  # its 12 members are gone, the sum is still there
    assert step_id_named(site, "sum")
    assert "12 Succeeded" in js(site, f"return document.querySelector("
                                      f"\"[data-group-id='{group}']\").textContent")
    driver.find_element(By.CSS_SELECTOR, ".act-collapse").click()  # Expand this group
    wait_until(lambda: not js(site, closed) and js(site, shown) == before,
               "the group open again", timeout=60)
