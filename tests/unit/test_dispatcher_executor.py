"""``DispatcherExecutor`` (dflow's constructor), the machine dicts the daemon hands to
dpdispatcher (Bohrium's included, credentials from the environment or the config file),
and the secrets that must never reach the store."""

import json
import os
import stat
from pathlib import Path

import pytest

from hpcflow.config_file import ConfigError, load_config, parse_config
from hpcflow.connectors.dispatcher import DispatcherExecutor
from hpcflow.connectors.executors.dispatcher_machine import dispatcher_machine
from hpcflow.errors import HpcflowError, WorkflowDefinitionError
from hpcflow.secrets import reveal

BOHRIUM_ENV = {"BOHRIUM_USERNAME": "me@example.org", "BOHRIUM_PASSWORD": "bohr-pw",
               "BOHRIUM_PROJECT_ID": "4242"}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("HPCFLOW_HOME", str(home))
    return home


def test_dflow_arguments_build_dflow_machine_and_resources():
    ex = DispatcherExecutor(host="login.example", username="alice", port=2200,
                            queue_name="cpu", private_key_file="~/.ssh/id_ed25519",
                            machine_dict={"batch_type": "PBS",
                                          "remote_profile": {"timeout": 30}},
                            resources_dict={"cpu_per_node": 4, "envs": {"A": "1"}},
                            envs={"B": "2"}, image="ignored:latest", clean=False)
    assert ex.machine_dict == {
        "batch_type": "PBS", "context_type": "SSHContext",
        "remote_profile": {"hostname": "login.example", "username": "alice", "port": 2200,
                           "timeout": 30,
                           "key_filename": os.path.expanduser("~/.ssh/id_ed25519")}}
    assert ex.resources_dict == {"number_node": 1, "cpu_per_node": 4, "group_size": 1,
                                 "queue_name": "cpu",
                                 "envs": {"PYTHONUNBUFFERED": "true", "A": "1", "B": "2"}}
    spec = ex.to_spec()
    assert spec["kind"] == "dispatcher" and spec["clean"] is False
    # dflow's default remote root, chosen by the daemon for the context
    machine = dispatcher_machine(spec["machine"], parse_config({}), spec, Path("/h"), None, {})
    assert machine.machine_dict["remote_root"] == "/home/alice/hpcflow/workflows"
    local = DispatcherExecutor(machine_dict={"batch_type": "Shell",
                                             "context_type": "LocalContext"}).to_spec()
    machine = dispatcher_machine(local["machine"], parse_config({}), local, Path("/h"), None, {})
    assert machine.machine_dict["remote_root"] == f"/h/dispatcher/{local['machine']}/remote"
    assert spec["machine"].startswith("dispatcher-")
    # the same machine is the same executor; another machine another one
    assert DispatcherExecutor(host="login.example", username="alice", port=2200,
                              queue_name="cpu", private_key_file="~/.ssh/id_ed25519",
                              machine_dict={"batch_type": "PBS",
                                            "remote_profile": {"timeout": 30}},
                              clean=False).to_spec()["machine"] == spec["machine"]
    assert DispatcherExecutor(host="other").to_spec()["machine"] != spec["machine"]


def test_json_file_is_merged_like_dflow(tmp_path: Path):
    conf = tmp_path / "dp.json"
    conf.write_text(json.dumps({"machine": {"batch_type": "LSF"},
                                "resources": {"gpu_per_node": 1}}))
    ex = DispatcherExecutor(host="h", json_file=conf, resources_dict={"gpu_per_node": 2})
    assert ex.machine_dict is not None and ex.machine_dict["batch_type"] == "LSF"
    assert ex.resources_dict["gpu_per_node"] == 2


@pytest.mark.parametrize("kwargs, culprit", [
    ({"hots": "x"}, "'hots'"),
    ({"pre_script": "import os"}, "pre_script"),
    ({"merge_sliced_step": True}, "merge_sliced_step"),
    ({"machine": "cluster", "host": "h"}, "machine='cluster'"),
    ({"resources_dict": {"group_size": 0}}, "group_size"),
    ({"docker_executable": "docker", "singularity_executable": "apptainer"}, "one of"),
    ({"json_file": "/nonexistent.json"}, "json_file"),
])
def test_bad_arguments_are_one_line_errors(kwargs, culprit):
    with pytest.raises(WorkflowDefinitionError) as err:
        DispatcherExecutor(**kwargs)
    assert culprit in str(err.value) and "\n" not in str(err.value)


def test_passwords_go_to_private_secrets_not_to_the_spec(home: Path):
    ex = DispatcherExecutor(host="h", username="u", password="ssh-pw-123",
                            machine_dict={"remote_profile": {"passphrase": "key-pp"}})
    spec = ex.to_spec()
    text = json.dumps(spec)
    assert "ssh-pw-123" not in text and "key-pp" not in text
    assert reveal(home, spec["secret"]) == {"password": "ssh-pw-123", "passphrase": "key-pp"}
    folder = home / "secrets"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    assert spec["secret"] not in ("ssh-pw-123",) and len(spec["secret"]) == 32
    # the daemon puts them back into the machine dict it hands to dpdispatcher
    machine = dispatcher_machine(spec["machine"], parse_config({}), spec, home,
                                 reveal(home, spec["secret"]), {})
    assert machine.machine_dict["remote_profile"]["password"] == "ssh-pw-123"
    assert machine.machine_dict["retry_count"] == 0  # hpcflow retries steps itself


def test_a_submitted_workflow_stores_no_password(home: Path, tmp_path: Path):
    from hpcflow import Step, Workflow
    from hpcflow import config as script_config
    from hpcflow.python import OP, PythonOPTemplate

    @OP.function
    def one() -> {"y": int}:
        return {"y": 1}

    script_config["engine_autostart"] = False
    try:
        wf = Workflow("secretive")
        wf.add(Step("one", PythonOPTemplate(one),
                    executor=DispatcherExecutor(host="h", password="never-in-the-store")))
        wf.submit()
    finally:
        script_config.pop("engine_autostart")
    assert b"never-in-the-store" not in (home / "store.db").read_bytes()
    assert b"never-in-the-store" in b"".join(p.read_bytes()
                                             for p in (home / "secrets").glob("*.json"))


def _bohrium_spec() -> dict:
    return DispatcherExecutor(machine_dict={
        "batch_type": "Bohrium", "context_type": "Bohrium",
        "remote_profile": {"input_data": {"image_name": "registry/img:1",
                                          "scass_type": "c8_m32_cpu"}}}).to_spec()


def test_bohrium_machine_reaches_dpdispatchers_bohrium_context(home: Path,
                                                               monkeypatch: pytest.MonkeyPatch):
    """No Bohrium service is reachable here: dpdispatcher's API client is replaced by a
    recorder, everything else (Machine.load_from_dict, the BohriumContext, dargs' checks) is
    dpdispatcher's own."""
    from hpcflow.connectors.executors.dispatcher import DispatcherJobs, import_dpdispatcher

    import_dpdispatcher(home)
    from dpdispatcher.contexts import dp_cloud_server_context

    logins: list[tuple] = []

    class RecordingClient:
        def __init__(self, *args, **kwargs):
            logins.append((args, kwargs))

    monkeypatch.setattr(dp_cloud_server_context, "Client", RecordingClient)
    spec = _bohrium_spec()
    assert "bohr-pw" not in json.dumps(spec)
    machine = dispatcher_machine(spec["machine"], parse_config({}), spec, home, None,
                                 BOHRIUM_ENV)
    jobs = DispatcherJobs(machine, home, home / "wake")
    dp_machine = jobs._dp_machine()
    assert type(dp_machine).__name__ == "Bohrium"
    assert isinstance(dp_machine.context, dp_cloud_server_context.BohriumContext)
    assert logins == [(("me@example.org", "bohr-pw"), {})]
    profile = dp_machine.context.remote_profile
    assert profile["email"] == "me@example.org" and profile["program_id"] == 4242
    assert profile["input_data"] == {"image_name": "registry/img:1", "scass_type": "c8_m32_cpu",
                                     "log_file": "log.txt", "job_type": "container",
                                     "platform": "ali", "job_name": f"hpcflow-{spec['machine']}",
                                     "output_log": True}
    # the password logged in, then left the profile dpdispatcher writes into its state files
    assert "password" not in profile
    assert dp_machine.context.temp_local_root == str(home / "runs")


def test_bohrium_credentials_from_the_config_file(home: Path, tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text('[bohrium]\nusername = "cfg@example.org"\npassword = "cfg-pw"\n'
                      'project_id = "7"\n')
    config.chmod(0o644)
    os.environ["HPCFLOW_CONFIG"] = str(config)
    try:
        with pytest.raises(ConfigError, match="chmod 600"):
            load_config(home)
        config.chmod(0o600)
        loaded = load_config(home)
    finally:
        del os.environ["HPCFLOW_CONFIG"]
    spec = _bohrium_spec()
    machine = dispatcher_machine(spec["machine"], loaded, spec, home, None, {})
    profile = machine.machine_dict["remote_profile"]
    assert (profile["email"], profile["password"], profile["program_id"]) == \
        ("cfg@example.org", "cfg-pw", 7)


def test_bohrium_without_credentials_names_what_to_set(home: Path):
    spec = _bohrium_spec()
    with pytest.raises(HpcflowError) as err:
        dispatcher_machine(spec["machine"], parse_config({}), spec, home, None,
                           {"BOHRIUM_USERNAME": "me"})
    assert "BOHRIUM_PASSWORD" in str(err.value) and "[bohrium]" in str(err.value)


def test_bohrium_ticket_replaces_the_password(home: Path):
    spec = _bohrium_spec()
    machine = dispatcher_machine(spec["machine"], parse_config({}), spec, home, None,
                                 {"BOHRIUM_TICKET": "t-1", "BOHRIUM_PROJECT_ID": "1"})
    assert machine.bohrium_ticket == "t-1"
    assert machine.machine_dict["remote_profile"]["password"] == ""


def test_openapi_machine_takes_keys_from_the_environment(home: Path):
    spec = DispatcherExecutor(machine_dict={"batch_type": "OpenAPI",
                                            "context_type": "OpenAPI"}).to_spec()
    machine = dispatcher_machine(spec["machine"], parse_config({}), spec, home, None,
                                 {"BOHRIUM_ACCESS_KEY": "ak", "BOHRIUM_APP_KEY": "app",
                                  "BOHRIUM_PROJECT_ID": "3"})
    profile = machine.machine_dict["remote_profile"]
    assert (profile["access_key"], profile["app_key"], profile["project_id"]) == ("ak", "app", 3)


def test_config_file_dispatchers():
    config = parse_config({"dispatchers": {"hpc": {
        "machine": {"batch_type": "Slurm", "context_type": "SSHContext",
                    "remote_profile": {"hostname": "h"}},
        "resources": {"queue_name": "q"}, "known_hosts": "/k", "max_parallel_calls": 2}}})
    hpc = config.dispatchers["hpc"]
    assert hpc.machine["batch_type"] == "Slurm" and hpc.max_parallel_calls == 2
    for bad, culprit in [({"hpc": {"resources": {}}}, "dispatchers.hpc.machine"),
                         ({"hpc": {"machine": {"batch_type": "Shell"}, "typo": 1}},
                          "dispatchers.hpc.typo"),
                         ({"slurm": {"machine": {"batch_type": "Shell"}}}, "'slurm'")]:
        with pytest.raises(ConfigError) as err:
            parse_config({"dispatchers": bad})
        assert culprit in str(err.value)
    with pytest.raises(ConfigError, match=r"bohrium\.email"):
        parse_config({"bohrium": {"email": "x"}})


IMPORT_WATCHED = '''
import os, pathlib, sys, threading
from hpcflow.connectors.executors.dispatcher import import_dpdispatcher
cwd, home, seen, done = os.getcwd(), os.environ["HOME"], set(), threading.Event()

def watch():
    while not done.is_set():
        seen.add((os.getcwd(), os.environ.get("HOME")))

watcher = threading.Thread(target=watch)
watcher.start()
import_dpdispatcher(pathlib.Path(sys.argv[1]))
done.set()
watcher.join()
print(sorted(seen) == [(cwd, home)], pathlib.Path.home() == pathlib.Path(home))
'''


def test_importing_dpdispatcher_changes_neither_cwd_nor_home_under_other_threads(tmp_path):
    """dpdispatcher writes a log in the working directory and a record directory in the
    home at import: both go under the hpcflow home instead, while another thread sees the
    process's working directory and HOME unchanged throughout (it was chdir and HOME)."""
    import subprocess
    import sys

    work, user_home, hf = tmp_path / "work", tmp_path / "user", tmp_path / "hf"
    work.mkdir()
    user_home.mkdir()
    done = subprocess.run([sys.executable, "-c", IMPORT_WATCHED, str(hf)], cwd=work,
                          env={**os.environ, "HOME": str(user_home)}, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.split() == ["True", "True"], done.stderr
    assert not list(work.iterdir()) and not list(user_home.iterdir())
    assert (hf / "dpdispatcher" / "submission").is_dir()
