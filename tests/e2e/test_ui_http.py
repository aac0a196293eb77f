"""``hpcflow ui`` over plain HTTP, as another user of a shared login node (or a hostile
page in the user's own browser) would try it: nothing without the token, nothing
state-changing without the CSRF token and our own Origin, no other Host, no file outside
the fixed table whatever the path, a Unix socket only its owner can open; and the data
answers with the token (a real workflow run by the engine, an artifact downloaded by step
and name through the storage client)."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import socket
import stat
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli, wait_until

SCRIPT = '''
from pathlib import Path
from hpcflow import Step, Workflow
from hpcflow.python import OP, PythonOPTemplate, Artifact

@OP.function
def make(x: int) -> {"y": int, "out": Artifact(Path)}:
    print("making", x)
    Path("out").mkdir()
    Path("out/data.txt").write_text(f"value {x}\\n")
    return {"y": x + 1, "out": Path("out")}

wf = Workflow("uihttp")
wf.add(Step("make", PythonOPTemplate(make), parameters={"x": 41}))
wf.submit()
print(wf.id)
'''


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A home with one finished workflow, and a dashboard on a free port of 127.0.0.1."""
    from hpcflow.ui.api import Api
    from hpcflow.ui.auth import Guard
    from hpcflow.ui.server import make_server

    tmp = tmp_path_factory.mktemp("uihttp")
    home = tmp / "home"
    (tmp / "wf.py").write_text(SCRIPT)
    done = run_cli(["run", "wf.py"], home, tmp)
    assert done.returncode == 0, done.stderr
    wf_id = done.stdout.split()[0]
    api = Api(home)
    guard = Guard(cookie_name="hpcflow_ui_test")
    server = make_server(api, guard, port=0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"port": server.server_address[1], "guard": guard, "wf": wf_id, "home": home,
               "tmp": tmp}
    finally:
        server.shutdown()
        server.server_close()
        api.close()
        run_cli(["daemon", "stop"], home, tmp)


def request(served: dict, method: str, path: str, headers: dict[str, str] | None = None,
            auth: bool = True) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", served["port"], timeout=60)
    sent = {"Host": f"127.0.0.1:{served['port']}"}
    if auth:
        sent["Authorization"] = f"Bearer {served['guard'].token}"
    sent.update(headers or {})
    conn.request(method, path, headers=sent)
    answer = conn.getresponse()
    body = answer.read()
    conn.close()
    return answer.status, {k.lower(): v for k, v in answer.getheaders()}, body


def test_without_the_token_nothing_is_served(served: dict) -> None:
    for path in ("/", "/static/app.js", "/api/workflows", f"/api/workflows/{served['wf']}",
                 f"/api/workflows/{served['wf']}/steps/2/log"):
        status, _, body = request(served, "GET", path, auth=False)
        assert status == 401, path
        assert served["wf"].encode() not in body and b"making" not in body


def test_a_wrong_token_is_refused(served: dict) -> None:
    wrong = served["guard"].token[:-2] + ("AA" if not served["guard"].token.endswith("AA")
                                          else "BB")
    for headers, path in (({"Authorization": f"Bearer {wrong}"}, "/api/workflows"),
                          ({}, f"/?token={wrong}"),
                          ({"Cookie": "hpcflow_ui_test=" + "0" * 64}, "/api/workflows"),
                          ({"Cookie": f"hpcflow_ui_test={served['guard'].token}"},
                           "/api/workflows")):  # the token itself is not the cookie's value
        status, answer_headers, body = request(served, "GET", path, headers, auth=False)
        assert status == 401, (headers, path)
        assert "set-cookie" not in answer_headers
        assert served["wf"].encode() not in body


def test_the_token_sets_a_strict_cookie_and_leaves_the_address_bar(served: dict) -> None:
    status, headers, _ = request(served, "GET", f"/?token={served['guard'].token}", auth=False)
    assert status == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert served["guard"].token not in cookie
    status, _, body = request(served, "GET", "/api/workflows",
                              {"Cookie": cookie.split(";")[0]}, auth=False)
    assert status == 200 and served["wf"] in [w["id"] for w in json.loads(body)["workflows"]]


def test_a_host_that_is_not_ours_is_refused(served: dict) -> None:
    """DNS rebinding: the attacker's name resolves to 127.0.0.1, the browser sends it as
    Host; the token is not even looked at."""
    for host in ("evil.example:8080", "evil.example", f"127.0.0.1.evil.example:{served['port']}",
                 ""):
        status, _, body = request(served, "GET", "/api/workflows", {"Host": host})
        assert status == 403, host
        assert served["wf"].encode() not in body
    assert request(served, "GET", "/api/workflows", {"Host": "localhost:8765"})[0] == 200


def test_state_changes_need_post_the_csrf_token_and_our_origin(served: dict) -> None:
    wf, guard = served["wf"], served["guard"]
    action = f"/api/workflows/{wf}/actions/retry"
    assert request(served, "GET", action)[0] == 404  # not a GET route
    assert request(served, "POST", action)[0] == 403  # no CSRF header
    assert request(served, "POST", action, {"X-CSRF-Token": "0" * 64})[0] == 403
    assert request(served, "POST", action, {"X-CSRF-Token": guard.token})[0] == 403
    status, _, body = request(served, "POST", action, {"X-CSRF-Token": guard.csrf,
                                                       "Origin": "http://evil.example"})
    assert status == 403 and b"another site" in body
    # with all of it the request reaches the engine's rules (a succeeded workflow: 409)
    status, _, body = request(served, "POST", action, {
        "X-CSRF-Token": guard.csrf, "Origin": f"http://127.0.0.1:{served['port']}"})
    assert status == 409 and b"only a Failed" in body, body
    # the page carries the CSRF token for its own script
    assert guard.csrf.encode() in request(served, "GET", "/")[2]


TRAVERSALS = [
    "/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "/static/..%2f..%2fetc%2fpasswd",
    "/static//etc/passwd", "//etc/passwd", "/static/app.js/../../../etc/passwd",
    "/static/%00app.js", "/static/..%5c..%5cetc%5cpasswd", "/etc/passwd",
    "/static/index.html/../../api.py", "/static/api.py", "/static/../api.py",
    "/api/workflows/..%2f..%2fetc/steps", "/api/workflows/%2e%2e",
    "/api/workflows/{wf}/steps/2/artifacts/..%2f..%2f..%2fetc%2fpasswd",
    "/api/workflows/{wf}/steps/2/artifacts/%2fetc%2fpasswd",
    "/api/workflows/{wf}/steps/2/artifacts/out%2f..%2f..%2fstore.db",
    "/api/workflows/{wf}/steps/2/artifacts/../../store.db",
    "/api/workflows/{wf}/steps/..%2f2/log",
]


def test_no_path_leaves_the_fixed_table(served: dict) -> None:
    """Every file-serving route, with ``..`` plain and encoded, absolute paths, NUL,
    backslashes: refused, and no byte of the file it aims at comes back."""
    secret = (served["home"] / "store.db").read_bytes()[:16]
    for path in TRAVERSALS:
        path = path.format(wf=served["wf"])
        status, _, body = request(served, "GET", path)
        assert status in (400, 404), (path, status)
        assert b"root:" not in body and secret not in body and b"def " not in body, path


def test_a_symlink_in_the_package_is_never_followed_from_a_url(served: dict) -> None:
    """A file a URL cannot name is not served even if it sits beside the page's files."""
    static = Path(__import__("hpcflow.ui", fromlist=["x"]).__file__).parent / "static"
    link = static / "passwd.js"
    try:
        link.symlink_to("/etc/passwd")
    except OSError:
        pytest.skip("the package folder is read-only here")
    try:
        status, _, body = request(served, "GET", "/static/passwd.js")
        assert status == 404 and b"root:" not in body
    finally:
        link.unlink()


def test_the_data_answers_with_the_token(served: dict) -> None:
    wf = served["wf"]
    listed = json.loads(request(served, "GET", "/api/workflows?phase=Succeeded")[2])
    assert [w["id"] for w in listed["workflows"]] == [wf]
    assert json.loads(request(served, "GET", "/api/workflows?phase=Failed")[2]) == \
        {"workflows": []}
    assert json.loads(request(served, "GET", "/api/workflows?label=a=b")[2]) == {"workflows": []}
    status, _, body = request(served, "GET", "/api/workflows?age=soon")
    assert status == 400 and b"not an age" in body
    steps = json.loads(request(served, "GET", f"/api/workflows/{wf}/steps")[2])["steps"]
    make = next(s for s in steps if s["name"] == "make")
    step = json.loads(request(served, "GET", f"/api/workflows/{wf}/steps/{make['id']}")[2])
    assert step["phase"] == "Succeeded" and step["machine"] == "local"
    assert {p["name"]: (p["preview"], p["bytes"]) for p in step["outputs"]}["y"] == ("42", 2)
    assert [a["name"] for a in step["artifacts"]] == ["out"] and step["artifacts"][0]["keys"]
    log = json.loads(request(served, "GET", f"/api/workflows/{wf}/steps/{make['id']}/log")[2])
    assert "making 41" in log["text"] and log["final"]
    again = json.loads(request(served, "GET", f"/api/workflows/{wf}/steps/{make['id']}/log"
                                             f"?offset={log['offset']}")[2])
    assert again["text"] == "" and again["offset"] == log["offset"]
    phases = json.loads(request(served, "GET", f"/api/workflows/{wf}/phases")[2])
    assert phases["phase"] == "Succeeded" and [make["id"], "Succeeded"] in \
        [c[:2] for c in phases["changed"]]
    quiet = json.loads(request(served, "GET", f"/api/workflows/{wf}/phases?event="
                                              f"{phases['cursor']}&step={phases['newest_step']}")[2])
    assert quiet["changed"] == [] and not quiet["new_steps"]
    status, headers, svg = request(served, "GET", f"/api/workflows/{wf}/graph.svg")
    assert status == 200 and headers["content-type"].startswith("image/svg+xml")
    assert f'data-step-id="{make["id"]}"'.encode() in svg
    root = next(s for s in steps if not s["parent_id"])
    _, _, closed = request(served, "GET", f"/api/workflows/{wf}/graph.svg?collapse={root['id']}")
    assert f'class="group collapsed phase-Succeeded" data-group-id="{root["id"]}"'.encode() \
        in closed and b"data-step-id=" not in closed
    assert request(served, "GET", f"/api/workflows/{wf}/graph.svg?collapse=1,x")[0] == 400
    assert request(served, "GET", "/api/workflows/nope-abcde")[0] == 404


def test_an_artifact_downloads_by_step_and_name(served: dict) -> None:
    wf = served["wf"]
    steps = json.loads(request(served, "GET", f"/api/workflows/{wf}/steps")[2])["steps"]
    make = next(s for s in steps if s["name"] == "make")
    status, headers, body = request(served, "GET",
                                    f"/api/workflows/{wf}/steps/{make['id']}/artifacts/out")
    assert status == 200 and 'filename="out.tgz"' in headers["content-disposition"]
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        names = tar.getnames()
        member = next(n for n in names if n.endswith("data.txt"))
        assert tar.extractfile(member).read() == b"value 41\n"  # type: ignore[union-attr]
    assert request(served, "GET", f"/api/workflows/{wf}/steps/{make['id']}/artifacts/nope")[0] \
        == 404


def _ui(args: list[str], home: Path, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, HPCFLOW_HOME=str(home))
    return subprocess.Popen([sys.executable, "-m", "hpcflow.cli.main", "ui", "--quiet", *args],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def printed(proc: subprocess.Popen) -> str:
    """What ``hpcflow ui`` printed, up to its last line (the URL to open)."""
    lines = []
    for line in proc.stdout:  # type: ignore[union-attr]
        lines.append(line)
        if "then open:" in line:
            break
    return "".join(lines)


def test_the_unix_socket_is_0600_and_needs_the_token(served: dict, tmp_path: Path) -> None:
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    path = folder / "ui.sock"
    proc = _ui(["--socket", str(path)], served["home"], tmp_path)
    try:
        wait_until(path.exists, "the dashboard's socket", timeout=60)
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600
        assert stat.S_ISSOCK(path.lstat().st_mode)
        said = printed(proc)
        assert f"ssh -N -L 8765:{path}" in said
        token = re.findall(r"token=(\S+)", said)[-1]

        def get(headers: dict[str, str]) -> int:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(60)
            sock.connect(str(path))
            conn = http.client.HTTPConnection("localhost")
            conn.sock = sock
            conn.request("GET", "/api/workflows", headers={"Host": "localhost:8765", **headers})
            status = conn.getresponse().status
            conn.close()
            return status

        assert get({}) == 401
        assert get({"Authorization": f"Bearer {token}"}) == 200
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert not path.exists()  # removed when the dashboard stops


def test_bad_input_is_one_line(served: dict, tmp_path: Path) -> None:
    home, port = served["home"], served["port"]
    cases = [
        (["ui", "--port", str(port)], f"port {port} on 127.0.0.1 is in use"),
        (["ui", "--socket", "/tmp/hpcflow-ui-test.sock"], "can be written by other users"),
        (["ui", "--socket", str(tmp_path / "no" / "ui.sock")], "does not exist"),
        (["ui", "--port", "70000"], "70000"),
        (["ui", "--bind", "10.254.254.254"], "no such address"),
    ]
    for args, said in cases:
        done = run_cli(args, home, tmp_path, timeout=60)
        assert done.returncode != 0, args
        assert said in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr


def test_an_unexpected_error_is_one_line_and_the_server_goes_on(
        served: dict, capfd: pytest.CaptureFixture[str]) -> None:
    from hpcflow.ui.api import Api
    from hpcflow.ui.server import make_server

    class Broken(Api):
        def workflows(self, *args: Any, **kwargs: Any) -> dict:
            raise RuntimeError("the disk said no")

    api = Broken(served["home"])
    server = make_server(api, served["guard"], port=0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        here = dict(served, port=server.server_address[1])
        status, _, body = request(here, "GET", "/api/workflows")
        assert status == 500 and b"RuntimeError: the disk said no" in body
        assert request(here, "GET", f"/api/workflows/{served['wf']}")[0] == 200
    finally:
        server.shutdown()
        server.server_close()
        api.close()
    err = capfd.readouterr().err
    assert "GET /api/workflows: RuntimeError: the disk said no" in err
    assert "Traceback" not in err and served["guard"].token not in err


def test_concurrent_requests_share_the_store_safely(served: dict) -> None:
    """Browser tabs poll at once: every answer is whole and right (each request borrows its
    own connection of the pool; the graph does not read through the process's shared one)."""
    from concurrent.futures import ThreadPoolExecutor

    wf = served["wf"]
    paths = [f"/api/workflows/{wf}/graph.svg", f"/api/workflows/{wf}/phases",
             f"/api/workflows/{wf}/steps", f"/api/workflows/{wf}", "/api/workflows",
             f"/api/workflows/{wf}/steps/2", f"/api/workflows/{wf}/steps/2/log"] * 12
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda p: (p, request(served, "GET", p)), paths))
    for path, (status, _, body) in answers:
        assert status == 200, (path, body[:200])
        if path.endswith(".svg"):
            assert body.rstrip().endswith(b"</svg>")
        else:
            json.loads(body)
