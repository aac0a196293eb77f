"""The CLI's streamed output is the same text as its all-at-once form."""

import json

import pytest

from hpcflow.cli import render


@pytest.mark.parametrize("items", [[], [{"a": 1}], [{"a": [1, 2], "b": {"c": "x\ny"}}, 3, None]])
def test_json_array_pieces_make_the_same_text_as_json_dumps(items: list) -> None:
    assert "".join(render.json_array(iter(items))) == json.dumps(items, indent=2)


def test_streamed_table_lines_are_the_table() -> None:
    rows = [[1, "first", None], [22, "a much longer name", "why"], [333, "", "x"]]
    lines = list(render.streamed_table(["ID", "NAME", "REASON"], lambda: iter(rows)))
    assert "\n".join(lines) == render.table(["ID", "NAME", "REASON"], rows)
