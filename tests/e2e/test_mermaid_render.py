"""``hpcflow graph -o mermaid`` read by the real Mermaid: its browser bundle (pinned, fetched
from the npm registry by tests/services/fetch-mermaid.sh) renders our text in headless
Chromium, with Mermaid's strict security level, as a README or an issue page would.

The graphs are those of tests/unit/test_ui_export.py (the same ``render_mermaid`` the CLI
prints): hostile step names, nested groups with folded items, a 10,000-item fan-out. A
broken text is refused by the same page, so a renderer that accepted anything would fail
the first test. Skipped, saying why, only where Chromium, Selenium or the bundle is missing
outside CI."""

import os
from pathlib import Path
from typing import Any

import pytest

from hpcflow.ui import export
from hpcflow.ui.graph_model import build_graph
from tests.e2e.test_ui_browser import CHROMIUM, DRIVER, HAVE_SELENIUM, chromium
from tests.unit.test_ui_export import NASTY, _named
from tests.unit.ui_graphs import FAN_SPEC, MIXED_SPEC, fan_out, mixed_rows

MERMAID_JS = os.environ.get("HPCFLOW_TEST_MERMAID_JS")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER and HAVE_SELENIUM and MERMAID_JS) and os.environ.get("CI") != "true",
    reason="headless Chromium, Selenium and Mermaid's bundle are needed: tests/services/up.sh "
           "installs them and names the bundle in services.env (HPCFLOW_TEST_MERMAID_JS)")

#: Renders arguments[0] into #out; what the page then shows, or Mermaid's error.
RENDER = """
const done = arguments[arguments.length - 1];
mermaid.render("graph" + Date.now(), arguments[0]).then(result => {
  const out = document.getElementById("out");
  out.innerHTML = result.svg;
  done({text: out.textContent,
        nodes: out.querySelectorAll("g.node").length,
        clusters: out.querySelectorAll("g.cluster").length,
        links: out.querySelectorAll("path.flowchart-link").length,
        scripts: out.querySelectorAll("script").length});
}, error => done({error: String((error && error.message) || error)}));
"""


@pytest.fixture(scope="module")
def page() -> Any:
    assert MERMAID_JS and Path(MERMAID_JS).is_file(), f"no Mermaid bundle at {MERMAID_JS!r}"
    driver = chromium()
    try:
        driver.get("data:text/html,<html><body><div id='out'></div></body></html>")
        driver.execute_script("const s = document.createElement('script'); s.text = arguments[0];"
                              " document.head.appendChild(s);", Path(MERMAID_JS).read_text())
        driver.execute_script("mermaid.initialize({startOnLoad: false, securityLevel: 'strict'})")
        yield driver
    finally:
        driver.quit()


def render(page: Any, text: str) -> dict:
    return page.execute_async_script(RENDER, text)


def test_a_broken_text_is_refused_by_the_same_page(page) -> None:
    shown = render(page, 'flowchart TD\n  s1["a"] -->\n')
    assert "Parse error" in shown.get("error", ""), shown


def test_hostile_names_render_as_plain_text(page) -> None:
    shown = render(page, export.render_mermaid(_named(NASTY)))
    assert "error" not in shown, shown
    assert shown["scripts"] == 0
    assert shown["nodes"] == len(NASTY) and shown["links"] == len(NASTY) - 1, shown
    for name in ('<script>alert("x")</script>', "say \"hi\" & 'bye'", "ünï ✓ 日本",
                 "]]> <!-- x", 'x"]; click s2 call alert(1) %%'):
        assert name in shown["text"], (name, shown["text"])


def test_nested_groups_and_folded_items_render(page) -> None:
    graph = build_graph(mixed_rows(), MIXED_SPEC, fold=10)
    shown = render(page, export.render_mermaid(graph))
    assert "error" not in shown, shown
    groups = [n for n in graph.nodes.values() if n.kind == "group"]
    assert shown["clusters"] == len(groups) and groups, shown
    assert "nested · Steps: 1 Succeeded, 1 Running" in shown["text"]
    assert "more" in shown["text"]
    assert "sum · not started" in shown["text"]  # a step not created yet, as planned


def test_a_10000_item_fan_out_renders_folded(page) -> None:
    graph = build_graph(fan_out(10_000, {4321: "Failed", 9000: "Running"}), FAN_SPEC, fold=30)
    shown = render(page, export.render_mermaid(graph))
    assert "error" not in shown, shown
    assert shown["nodes"] == len([n for n in graph.nodes.values() if n.kind != "group"]), shown
    assert "9967 Succeeded" in shown["text"] and "Failed" in shown["text"]
