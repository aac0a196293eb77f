"""``LocalTransport``: the machine is this one (a login node that runs the daemon itself)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from hpcflow.connectors.transports.base import CommandResult, CommandTimeout
from hpcflow.secrets import without_credentials


def write_files_atomically(directory: Path, files: dict[str, bytes]) -> None:
    """Create ``directory`` and write each file (a name may hold ``/``: its folders are made)
    through a temporary name, so that a reader (or a crash) never sees half a file."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        target = directory / name
        if "/" in name:
            target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)


class LocalTransport:
    shares_files = True

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = env

    def run(self, argv: list[str], timeout: float = 120.0,
            input_text: str | None = None) -> CommandResult:
        try:
            # sbatch and qsub hand their environment to the job: never a credential
            done = subprocess.run(argv, input=input_text, capture_output=True, text=True,
                                  timeout=timeout, env=without_credentials(self.env),
                                  stdin=None if input_text
                                  else subprocess.DEVNULL)
        except FileNotFoundError as exc:
            return CommandResult(127, "", f"{argv[0]}: command not found ({exc.strerror})")
        except subprocess.TimeoutExpired as exc:  # subprocess.run has killed it
            raise CommandTimeout(f"{argv[0]} did not answer within {timeout:.0f} s") from exc
        return CommandResult(done.returncode, done.stdout, done.stderr)

    def write_files(self, directory: str, files: dict[str, bytes]) -> None:
        write_files_atomically(Path(directory), files)

    def read_file(self, path: str, max_bytes: int | None = None) -> bytes | None:
        try:
            with open(path, "rb") as f:
                if max_bytes is not None:
                    f.seek(0, os.SEEK_END)
                    f.seek(max(0, f.tell() - max_bytes))
                return f.read()
        except FileNotFoundError:
            return None

    def list_files(self, path: str) -> list[str]:
        root = Path(path)
        if root.is_file():
            return [path]
        return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.is_dir() else []

    def close(self) -> None:
        pass
