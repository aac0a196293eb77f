"""Error handling: retries on TransientError, a timeout, FatalError, continue_on_failed and
continue_on_success_ratio.

Run: hpcflow run examples/error_handling.py
"""

import time
from pathlib import Path

from hpcflow import Step, Workflow, argo_range
from hpcflow.python import OP, FatalError, PythonOPTemplate, TransientError


@OP.function
def flaky(marker: str) -> {"attempt": int}:
    path = Path(marker)
    attempt = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(attempt))
    if attempt < 3:
        raise TransientError(f"attempt {attempt}: the file system is busy")
    return {"attempt": attempt}


@OP.function
def slow(seconds: int) -> {"done": bool}:
    time.sleep(seconds)
    return {"done": True}


@OP.function
def picky(x: int) -> {"y": int}:
    if x % 4 == 3:
        raise FatalError(f"{x} is not acceptable")
    return {"y": x}


if __name__ == "__main__":
    retry = Step("retry", PythonOPTemplate(flaky, retry_on_transient_error=3),
                 parameters={"marker": str(Path("attempts.txt").absolute())})
    timeout = Step("timeout", PythonOPTemplate(slow), parameters={"seconds": 60}, timeout=2,
                   continue_on_failed=True)
    mostly = Step("mostly", PythonOPTemplate(picky), parameters={"x": "{{item}}"},
                  with_param=argo_range(8), continue_on_success_ratio=0.7)
    wf = Workflow(name="error-handling")
    wf.add([retry, timeout, mostly])
    wf.submit()
    wf.wait()
    print("phase:", wf.query_status())
    print("retry:", wf.query_step(name="retry")[0].outputs.parameters["attempt"].value,
          "attempts")
    print("timeout:", wf.query_step(name="timeout")[0].phase)
    items = wf.query_step(name="mostly", type="Pod")
    print("mostly:", sum(s.phase == "Succeeded" for s in items), "of", len(items), "succeeded")
    print("fatal reasons:", sorted({s.reason for s in items if s.phase == "Failed"}))
