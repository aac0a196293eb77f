"""``hpcflow.import_timing``: what a forked runner spent importing, per top-level module.

Each case runs in a Python of its own: the clock replaces a function of the interpreter's
import machinery, which this test process must keep as it is."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path


def run_probe(tmp_path: Path, body: str) -> dict:
    modules = tmp_path / "modules"
    modules.mkdir(exist_ok=True)
    # a package that sleeps as it is imported and imports another module that sleeps too
    (modules / "slow_outer").mkdir(exist_ok=True)
    (modules / "slow_outer" / "__init__.py").write_text(
        "import time\ntime.sleep(0.05)\nimport slow_inner\nfrom slow_outer import part\n")
    (modules / "slow_outer" / "part.py").write_text("import time\ntime.sleep(0.02)\n")
    (modules / "slow_inner.py").write_text("import time\ntime.sleep(0.03)\n")
    (modules / "quick.py").write_text("X = 1\n")
    step = tmp_path / "step"
    (step / "packages").mkdir(parents=True, exist_ok=True)
    (step / "packages" / "shipped.py").write_text("import time\ntime.sleep(0.02)\n")
    code = textwrap.dedent(f"""
        import json, sys
        sys.path[:0] = [{str(modules)!r}, {str(step / "packages")!r}]
        from pathlib import Path
        from hpcflow import import_timing
        step = Path({str(step)!r})
    """) + textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_an_import_counts_for_its_outermost_module_and_only_once(tmp_path) -> None:
    found = run_probe(tmp_path, """
        assert import_timing.install() and import_timing.install()  # twice is once
        import slow_outer
        import slow_outer  # loaded: nothing more
        import slow_inner  # loaded by slow_outer: nothing more
        import quick
        print(json.dumps(import_timing.report(step)))
    """)
    # its own imports are its time (quick, compiled on its first import, may show too)
    assert next(iter(found)) == "slow_outer" and "slow_inner" not in found, found
    assert found["slow_outer"] >= 0.1  # 0.05 + 0.03 + 0.02 slept


def test_the_steps_own_packages_and_short_imports_are_not_reported(tmp_path) -> None:
    found = run_probe(tmp_path, """
        import_timing.install()
        import shipped  # under the step's directory: no fork server can import it
        import slow_inner
        import_timing.SECONDS["tiny"] = 0.0005  # under a millisecond
        print(json.dumps(import_timing.report(step)))
    """)
    assert list(found) == ["slow_inner"], found


def test_nothing_is_measured_before_install_or_after_reset(tmp_path) -> None:
    found = run_probe(tmp_path, """
        import slow_inner
        before = import_timing.report(step)
        import_timing.install()
        import slow_outer
        import_timing.reset()
        print(json.dumps([before, import_timing.report(step)]))
    """)
    assert found == [{}, {}]


def test_a_failed_import_still_counts_and_is_raised(tmp_path) -> None:
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "broken.py").write_text(
        "import time\ntime.sleep(0.02)\nraise ImportError('no licence')\n")
    found = run_probe(tmp_path, """
        import_timing.install()
        try:
            import broken
        except ImportError as exc:
            assert str(exc) == "no licence"
        else:
            raise AssertionError("imported")
        print(json.dumps(import_timing.report(step)))
    """)
    assert list(found) == ["broken"] and found["broken"] >= 0.02
