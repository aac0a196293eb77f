"""SVG, DOT, Mermaid and PNG of a graph: the SVG's ids and classes the web page relies on,
names escaped in every format (a step named ``<script>`` stays text), DOT read back by the
real Graphviz, and a 10,000-item fan-out drawn small."""

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from hpcflow.errors import HpcflowError
from hpcflow.ui import export
from hpcflow.ui.graph_model import build_graph
from tests.unit.ui_graphs import (
    FAN_SPEC,
    MIXED_SPEC,
    diamond_rows,
    diamond_spec,
    fan_out,
    mixed_rows,
)

SVG = "{http://www.w3.org/2000/svg}"
#: Names a workflow may hold: quotes, spaces, markup, a backslash, unicode, a control char.
NASTY = ['<script>alert("x")</script>', 'say "hi" & \'bye\'', "a b\\c", "ünï ✓ 日本",
         "]]> <!-- x", "tab\tand\x01ctl", 'x"]; click s2 call alert(1) %%', "{{item}} #1;"]


def _named(names):
    """A DAG whose tasks carry ``names`` (in a chain), all under a root named like them."""
    rows = [{"id": 1, "parent_id": 0, "name": names[0], "type": "DAG", "phase": "Running"}]
    rows += [{"id": 2 + i, "parent_id": 1, "name": n, "type": "Pod",
              "phase": ("Failed", "Succeeded", "Running")[i % 3], "reason": n}
             for i, n in enumerate(names)]
    tasks = [{"name": n, "template": "leaf", "dependencies": [names[i - 1]] if i else []}
             for i, n in enumerate(names)]
    spec = {"entrypoint": "dag", "templates": {"dag": {"kind": "dag", "tasks": tasks},
                                              "leaf": {"kind": "python"}}}
    return build_graph(rows, spec, workflow="wf-<1>", name=names[1], phase="Running")


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_svg_marks_steps_groups_and_folded_nodes_as_the_page_expects():
    graph = build_graph(mixed_rows(fan_items=40), MIXED_SPEC, fold=10)
    root = _parse(export.render_svg(graph))
    assert root.tag == SVG + "svg" and "hpcflow-graph" in root.get("class")
    steps = {g.get("data-step-id"): g for g in root.iter(SVG + "g") if g.get("data-step-id")}
    groups = {g.get("data-group-id"): g for g in root.iter(SVG + "g")
              if g.get("data-group-id")}
    for node in graph.nodes.values():
        if node.kind == "step":
            element = steps.pop(str(node.step_id))
            assert element.get("class") == f"node phase-{node.phase}"
            texts = [t.text for t in element.iter(SVG + "text")]
            assert node.phase in texts  # the phase in words, not only in colour
            assert node.phase in element.find(SVG + "title").text
        elif node.kind == "group":
            element = groups.pop(str(node.step_id))
            assert element.get("class") == f"group phase-{node.phase}"
    assert not steps and not groups  # nothing else carries those ids
    (more,) = [g for g in root.iter(SVG + "g") if g.get("class") == "more"]
    assert more.get("data-more-of") == "3" and more.get("data-counts") == "Succeeded:27"
    assert "27 Succeeded" in "".join(more.itertext())
    failed = steps_with_phase(root, "Failed")
    assert "ValueError: <boom>" in failed[0].find(SVG + "title").text
    edges = [(p.get("data-from"), p.get("data-to")) for p in root.iter(SVG + "polyline")]
    assert sorted(edges) == sorted(graph.edges)


def steps_with_phase(root: ET.Element, phase: str) -> list[ET.Element]:
    return [g for g in root.iter(SVG + "g") if g.get("class") == f"node phase-{phase}"]


def test_svg_names_are_escaped_and_inert_and_it_references_nothing_outside():
    svg = export.render_svg(_named(NASTY))
    root = _parse(svg)  # well-formed whatever the names
    tags = {e.tag for e in root.iter()}
    assert tags <= {SVG + t for t in ("svg", "title", "style", "g", "rect", "text",
                                      "polyline", "path")}
    assert "<script" not in svg and "&lt;script&gt;" in svg
    for element in root.iter():
        assert not any(k.startswith("on") or "href" in k for k in element.attrib)
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "url(" not in svg and "@import" not in svg
    titles = [t.text for t in root.iter(SVG + "title")]
    assert any('<script>alert("x")</script>' in t for t in titles)  # back as text
    assert any("ünï ✓ 日本" in t for t in titles)
    assert root.get("aria-label").startswith("workflow wf-<1> (say")


def test_dot_quotes_every_name_and_graphviz_reads_it_back():
    graph = _named(NASTY)
    text = export.render_dot(graph)
    for name in NASTY:  # every name appears only inside a quoted string, escaped
        quoted = export.dot_quote(f"{name}\n")[:-3]
        assert quoted in text
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (tests/run.sh installs it)")
    done = subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    drawn = ET.fromstring(done.stdout)
    words = " ".join(t.text or "" for t in drawn.iter(SVG + "text"))
    for name in ('<script>alert("x")</script>', "say \"hi\" & 'bye'", "a b\\c", "ünï ✓ 日本"):
        assert name in words  # Graphviz read each label as the name itself
    assert "<script" not in done.stdout.decode()


def test_dot_of_groups_draws_clusters_and_edges_between_groups():
    graph = build_graph(mixed_rows(), MIXED_SPEC, fold=10)
    text = export.render_dot(graph)
    assert 'subgraph "cluster_s3" {' in text and 'subgraph "cluster_s5" {' in text
    assert 'lhead="cluster_s3"' in text  # prep -> the loop's box
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (tests/run.sh installs it)")
    done = subprocess.run(["dot", "-Tplain"], input=text.encode(), capture_output=True,
                          timeout=60, check=False)
    assert done.returncode == 0 and b"Warning" not in done.stderr, done.stderr.decode()


def test_mermaid_labels_cannot_break_out_of_their_quotes():
    text = export.render_mermaid(_named(NASTY))
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    node_line = re.compile(r'^\s*s\d+\["[^"<>#\n]*(#\d+;[^"<>#\n]*)*"\]:::\w+$')
    nodes = [ln for ln in lines if re.match(r"^\s*s\d+\[", ln)]
    assert len(nodes) == len(NASTY) and all(node_line.match(ln) for ln in nodes), nodes
    assert "#60;script#62;alert(#34;x#34;)#60;/script#62;" in text
    assert "ünï ✓ 日本" in text  # letters beyond ASCII kept
    edges = [ln.strip() for ln in lines if "-->" in ln]
    assert edges == [f"s{i + 2} --> s{i + 3}" for i in range(len(NASTY) - 1)]


def test_mermaid_nests_groups_as_subgraphs():
    text = export.render_mermaid(build_graph(mixed_rows(), MIXED_SPEC, fold=10))
    assert text.count("subgraph ") == text.count("\n  end") + text.count("\n    end")
    assert '    subgraph s5["nested · Steps: 1 Succeeded, 1 Running"]' in text
    assert "more_s3[" in text
    assert "  style s3 fill:#d9ecf8,stroke:#0072b2" in text  # the loop's box: Running


def test_png_through_graphviz_or_one_clear_line_without_it(monkeypatch):
    graph = build_graph(diamond_rows(), diamond_spec())
    if shutil.which("dot") is not None:
        assert export.render_png(graph).startswith(b"\x89PNG\r\n\x1a\n")
    monkeypatch.setattr(export.shutil, "which", lambda name: None)
    with pytest.raises(HpcflowError, match=r"install graphviz .* or use -o svg"):
        export.render_png(graph)


def test_the_svg_of_a_10000_item_fan_out_stays_small():
    graph = build_graph(fan_out(10_000, {4321: "Failed", 9000: "Running"}), FAN_SPEC, fold=30)
    svg = export.render_svg(graph)
    assert len(svg) < 60_000, len(svg)
    root = _parse(svg)
    assert len([g for g in root.iter(SVG + "g") if g.get("data-step-id")]) == 33
    (more,) = [g for g in root.iter(SVG + "g") if g.get("class") == "more"]
    assert "9967 Succeeded" in "".join(more.itertext())
    (fan,) = [g for g in root.iter(SVG + "g") if g.get("data-group-id") == "2"]
    assert "9998 Succeeded, 1 Running, 1 Failed" in "".join(fan.itertext())


def test_a_workflow_not_started_and_a_loop_over_nothing_still_draw():
    empty = build_graph([], FAN_SPEC, workflow="wf-1", name="wf", phase="Pending")
    assert empty.nodes == {} and _parse(export.render_svg(empty)).tag == SVG + "svg"
    assert export.render_dot(empty).startswith('digraph "wf-1" {')
    assert export.render_mermaid(empty).startswith("flowchart TD")
    rows = [{"id": 1, "parent_id": 0, "name": "wf", "type": "Steps", "phase": "Running"},
            {"id": 2, "parent_id": 1, "name": "fan", "type": "StepGroup",
             "phase": "Succeeded"}]
    graph = build_graph(rows, FAN_SPEC)
    root = _parse(export.render_svg(graph))
    (fan,) = [g for g in root.iter(SVG + "g") if g.get("data-group-id") == "2"]
    assert "fan · loop: no steps yet" in "".join(fan.itertext())
    text = export.render_dot(graph)
    assert '"s2-empty" [label="no steps yet"' in text
    if shutil.which("dot") is not None:
        done = subprocess.run(["dot", "-Tplain"], input=text.encode(), capture_output=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stderr.decode()


def test_planned_tasks_are_drawn_dashed_in_every_format_and_carry_no_step_id():
    """A DAG's tasks not created yet: a dashed box saying so in the SVG (no ``data-step-id``:
    there is no step to open), in DOT (read back by the real Graphviz) and in Mermaid."""
    rows = [r for r in diamond_rows() if r["name"] in ("wf", "a", "b")]
    graph = build_graph(rows, diamond_spec(), workflow="wf-1")
    root = _parse(export.render_svg(graph))
    planned = [g for g in root.iter(SVG + "g") if g.get("class") == "planned"]
    assert sorted("".join(g.itertext()) for g in planned) == [
        "c: not startedcnot started", "d: not starteddnot started"]
    assert all(g.get("data-step-id") is None for g in planned)
    steps = [g.get("data-step-id") for g in root.iter(SVG + "g") if g.get("data-step-id")]
    assert sorted(steps) == ["2", "3"]
    assert len(list(root.iter(SVG + "polyline"))) == 4  # a->b, a->c, b->d, c->d
    mermaid = export.render_mermaid(graph)
    assert 'plan_s1_2["c · not started"]:::planned' in mermaid
    text = export.render_dot(graph)
    assert 'class="planned"' in text
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (tests/run.sh installs it)")
    done = subprocess.run(["dot", "-Tplain"], input=text.encode(), capture_output=True,
                          timeout=60, check=False)
    assert done.returncode == 0 and b"Warning" not in done.stderr, done.stderr.decode()
    assert b"not started" in done.stdout
