"""``daemon/import_hint.py``: the tip to preload what local steps spend their time importing."""

from hpcflow.daemon import import_hint
from hpcflow.daemon.import_hint import PreloadAdvisor, PreloadTip

NUMPY_STEP = {"numpy": 0.075, "scipy": 0.03, "json": 0.002}


def test_a_template_whose_steps_mostly_import_gets_one_tip() -> None:
    advisor = PreloadAdvisor()
    assert advisor.observe("wf", "fit", NUMPY_STEP, 0.12) is None
    assert advisor.observe("wf", "fit", NUMPY_STEP, 0.12) is None
    tip = advisor.observe("wf", "fit", NUMPY_STEP, 0.12)
    assert tip is not None
    assert tip.modules == ("numpy", "scipy")  # json is too small a share to name
    assert abs(tip.import_seconds - 0.107) < 1e-9 and abs(tip.step_seconds - 0.12) < 1e-9
    # decided: no second tip for more steps of it
    assert all(advisor.observe("wf", "fit", NUMPY_STEP, 0.12) is None for _ in range(5))
    # another workflow's steps of a template of the same name are looked at anew
    assert [advisor.observe("wf2", "fit", NUMPY_STEP, 0.12) for _ in range(3)][-1] is not None


def test_no_tip_where_imports_are_short_or_a_small_share_of_the_step() -> None:
    advisor = PreloadAdvisor()
    quick = [advisor.observe("wf", "quick", {"json": 0.01}, 0.012) for _ in range(3)]
    long_ = [advisor.observe("wf", "long", NUMPY_STEP, 60.0) for _ in range(3)]
    nothing = [advisor.observe("wf", "none", {}, 0.01) for _ in range(3)]
    assert quick == long_ == nothing == [None] * 3


def test_modules_preloaded_already_are_never_named() -> None:
    advisor = PreloadAdvisor()
    seen = [advisor.observe("wf", "fit", NUMPY_STEP, 0.12, preloaded=("numpy",))
            for _ in range(3)]
    assert seen[-1] is not None and seen[-1].modules == ("scipy",)
    advisor = PreloadAdvisor()
    only = [advisor.observe("wf", "fit", {"numpy": 0.1}, 0.12, preloaded=("numpy",))
            for _ in range(3)]
    assert only == [None] * 3


def test_the_tip_says_what_to_write_and_where() -> None:
    text = PreloadTip("fit", ("numpy", "scipy"), 0.107, 0.12).text("/home/u/.hpcflow/config.toml")
    assert text.startswith("steps of 'fit' spend 107 ms each (89% of their time) importing "
                           "numpy, scipy: preload = [\"numpy\", \"scipy\"] under "
                           "[executors.local] in /home/u/.hpcflow/config.toml"), text
    assert "import them once" in text
    assert "import it once" in PreloadTip("fit", ("numpy",), 0.1, 0.1).text("c.toml")


def test_memory_is_bounded_whatever_the_number_of_templates(monkeypatch) -> None:
    monkeypatch.setattr(import_hint, "REMEMBERED", 50)
    advisor = PreloadAdvisor()
    for i in range(500):
        advisor.observe(f"wf{i}", "fit", {}, 0.01)
    assert len(advisor._tallies) == 50


def test_steps_that_imported_nothing_count_too() -> None:
    """A template whose steps import a slow module only now and then: the others, which
    reported no imports, bring the average under the bar."""
    advisor = PreloadAdvisor()
    seen = [advisor.observe("wf", "sometimes", {"scipy": 0.05}, 0.06),
            advisor.observe("wf", "sometimes", {}, 0.01),
            advisor.observe("wf", "sometimes", {}, 0.01)]
    assert seen == [None] * 3


def test_many_small_imports_name_nothing_and_give_no_tip() -> None:
    """Twelve modules of 5 ms each: a lot of importing, but none a tenth of it; a tip
    would say preload = [] (it did)."""
    many = {f"m{i}": 0.005 for i in range(12)}
    advisor = PreloadAdvisor()
    assert [advisor.observe("wf", "many", many, 0.07) for _ in range(3)] == [None] * 3
