"""The daemon's config file: defaults, values, and errors that name the key."""

import re
from pathlib import Path

import pytest

from hpcflow.config_file import ConfigError, PollBounds, load_config, parse_config


def test_no_file_gives_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HPCFLOW_CONFIG", raising=False)
    config = load_config(tmp_path)
    assert config.path is None and config.idle_interval == 30.0
    assert config.poll_bounds("local") == PollBounds(0.5, 5.0)


def test_values_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HPCFLOW_CONFIG", raising=False)
    (tmp_path / "config.toml").write_text(
        '[daemon]\nlog_level = "DEBUG"\nidle_interval = 60\n'
        "[executors.local]\nparallelism = 3\nmin_poll_interval = 0.2\nmax_poll_interval = 10\n"
        'preload = ["numpy", "ase.io", "numpy"]\n')
    config = load_config(tmp_path)
    assert (config.log_level, config.idle_interval, config.local_parallelism) == ("debug", 60, 3)
    assert config.local_preload == ("numpy", "ase.io")
    assert config.poll_bounds("local") == PollBounds(0.2, 10.0)
    assert config.path == tmp_path / "config.toml"


@pytest.mark.parametrize("text, message", [
    ("[daemon]\nlog_levl = 'info'\n", "unknown key daemon.log_levl (did you mean log_level? "),
    ("[machines.hpc]\nschedular = 'slurm'\n",
     "unknown key machines.hpc.schedular (did you mean scheduler? known keys of"),
    ("[executors.local]\nparallelism = 0\n", "executors.local.parallelism must be a positive"),
    ("[executors.local]\nparallelism = 2.5\n", "must be a positive integer"),
    ("[executors.local]\nmin_poll_interval = true\n", "min_poll_interval must be a positive"),
    ("[executors.local]\nmin_poll_interval = 9\nmax_poll_interval = 1\n", "is larger than"),
    ("[executors.local]\npreload = 'numpy'\n",
     "executors.local.preload must be a list of module names, like [\"numpy\"], not 'numpy'"),
    ("[executors.local]\npreload = ['numpy; rm -rf ~']\n",
     "executors.local.preload: 'numpy; rm -rf ~' is not a module name"),
    ("[executors.local]\npreload = ['ase/io']\n", "'ase/io' is not a module name"),
    ("[executors.local]\npreload = [\"numpy\\n\"]\n", "'numpy\\n' is not a module name"),
    ("[executors.slurm]\n", "unknown key executors.slurm"),
    ("[daemon]\nlog_level = 'loud'\n", "daemon.log_level must be one of"),
    ("daemon = 3\n", "daemon must be a table"),
])
def test_mistakes_name_the_key(text: str, message: str):
    import tomllib

    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(tomllib.loads(text))


def test_file_errors_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "custom.toml"
    monkeypatch.setenv("HPCFLOW_CONFIG", str(path))
    with pytest.raises(ConfigError, match=r"HPCFLOW_CONFIG names .*custom\.toml.*does not exist"):
        load_config(tmp_path)
    path.write_text("[daemon\n")
    with pytest.raises(ConfigError, match=r"custom\.toml is not valid TOML"):
        load_config(tmp_path)
    path.write_text("[daemon]\nidle_interval = -1\n")
    with pytest.raises(ConfigError, match=r"custom.toml: daemon.idle_interval must be"):
        load_config(tmp_path)
    path.write_bytes(b'[daemon]\nlog_level = "d\xe9bogage"\n')  # Latin-1, not UTF-8
    with pytest.raises(ConfigError, match=r"custom\.toml is not UTF-8 text \(byte 0xe9 on "
                                          r"line 2\): save it as UTF-8"):
        load_config(tmp_path)


def test_the_documented_example_is_valid_and_holds_the_defaults():
    import tomllib

    from hpcflow.config_file import DaemonConfig
    from tests.conftest import REPO

    with open(REPO / "config" / "config.example.toml", "rb") as f:
        example = parse_config(tomllib.load(f))
    defaults = DaemonConfig()
    assert (example.log_level, example.idle_interval) == (defaults.log_level,
                                                          defaults.idle_interval)
    assert example.poll_bounds("local") == defaults.poll_bounds("local")


@pytest.mark.parametrize("text, message", [
    ("[machines.hpc]\nscheduler = 'slrum'\n",
     "machines.hpc.scheduler must be one of lsf, pbs, sge, slurm, not 'slrum'"),
    ("[machines.hpc]\nscheduler = 'slurm'\nhost = 'login1'\n", "machines.hpc.work_root is "
                                                                "needed for a remote machine"),
    ("[machines.hpc]\nscheduler = 'slurm'\nport = 22\n", "has SSH settings but no host"),
    ("[machines.hpc]\nscheduler = 'slurm'\nhost = 'h'\nwork_root = '/w'\n"
     "allow_new_host_keys = 'yes'\n", "allow_new_host_keys must be true or false"),
    ("[machines.hpc]\nscheduler = 'slurm'\nqueue = 'x'\n", "unknown key machines.hpc.queue"),
    ("[machines.hpc]\nscheduler = 'slurm'\nprepare = 'module load x'\n", "must be a list"),
    ("[machines.local]\nscheduler = 'slurm'\n", "not 'local'"),
    ("[machines.hpc]\nscheduler = 'slurm'\nmax_jobs = 0\n", "max_jobs must be a positive"),
])
def test_machine_mistakes_name_the_key(text: str, message: str):
    import tomllib

    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(tomllib.loads(text))


def test_machines_and_the_implicit_slurm_machine():
    import tomllib

    config = parse_config(tomllib.loads(
        "[machines.hpc]\nscheduler = 'slurm'\nmax_poll_interval = 60\n"
        "[machines.hpc.resources]\npartition = 'cpu'\n"))
    assert config.machines["hpc"].resources == {"partition": "cpu"}
    assert config.poll_bounds("hpc") == PollBounds(1.0, 60.0)
    assert config.machines["slurm"].scheduler == "slurm"  # SlurmExecutor() with no machine
