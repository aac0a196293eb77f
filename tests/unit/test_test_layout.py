"""The test tree's own rule: every test file's name is unique across its folders (the folders
are not packages, so pytest imports test modules by their base name: two of one name stop the
whole run at collection, which a CI run once did)."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_file_names_are_unique_across_folders() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert not [n for n, count in names.items() if count > 1]
