"""A dflow application installed as a user installs it, for the ``--as-dflow`` tests: a
virtual environment whose site-packages hold the application, with hpcflow importable
(this environment's site-packages added by a ``.pth``, as if hpcflow were installed there
too), and a digest of the application's code to show the tests leave it untouched."""

import hashlib
import subprocess
import sys
import sysconfig
from pathlib import Path


def make_app_venv(root: Path, pip_args: list[str], hpcflow_first: bool,
                  timeout: float = 300) -> tuple[Path, Path]:
    """A venv under ``root`` with ``pip install --target SITE-PACKAGES *pip_args``: its python
    and its site-packages. ``hpcflow_first``: this environment's packages come before the
    application's (else after them, so that the application's own pins win)."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    vpy = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(vpy), "-c", "import sysconfig; "
                                   "print(sysconfig.get_paths()['purelib'])"], text=True,
                                  capture_output=True, check=True).stdout.strip())
    pth = "00-test-sites.pth" if hpcflow_first else "zz-hpcflow-test-site.pth"
    (purelib / pth).write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", "--target", str(purelib), *pip_args],
                   check=True, timeout=timeout)
    return vpy, purelib


def package_digest(site: Path, package: str) -> str:
    """SHA-256 over the package's ``.py`` files, in name order."""
    digest = hashlib.sha256()
    for path in sorted((site / package).rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()
