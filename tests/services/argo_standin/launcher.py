"""Start and stop the stand-in Argo Server as a separate process (for fixtures and scripts)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]


def make_tls_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost (it is its own CA bundle)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "argo-standin")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@dataclass
class StandinArgo:
    """A running stand-in: ``url``, ``token`` (allowed in ``namespace``), ``ca`` (TLS only)."""

    workdir: Path
    tokens: dict[str, Any]
    secrets: dict[str, Any] = field(default_factory=dict)
    artifact_repository: dict[str, Any] = field(default_factory=dict)
    tls: bool = False
    token: str = ""
    namespace: str = ""
    bucket: str = ""
    url: str = ""
    ca: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> StandinArgo:
        self.workdir.mkdir(parents=True, exist_ok=True)
        files = {"tokens": self.tokens, "secrets": self.secrets,
                 "artifact-repository": self.artifact_repository}
        argv = [sys.executable, "-m", "tests.services.argo_standin", "--port", "0",
                "--port-file", str(self.workdir / "port"), "--state", str(self.workdir / "state")]
        for option, content in files.items():
            path = self.workdir / f"{option}.json"
            path.write_text(json.dumps(content))
            path.chmod(0o600)
            argv += [f"--{option}", str(path)]
        if self.tls:
            cert, key = make_tls_cert(self.workdir)
            argv += ["--tls-cert", str(cert), "--tls-key", str(key)]
            self.ca = cert
        log = open(self.workdir / "standin.log", "ab")  # noqa: SIM115 (owned by the process)
        self.proc = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        port_file = self.workdir / "port"
        while not port_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError("the stand-in Argo Server exited: "
                                   + (self.workdir / "standin.log").read_text()[-2000:])
            if time.monotonic() > deadline:
                raise RuntimeError("the stand-in Argo Server did not start in time")
            time.sleep(0.05)
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://127.0.0.1:{int(port_file.read_text())}"
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    # -- control routes ----------------------------------------------------------------------
    def control(self, method: str, route: str, body: Any = None) -> Any:
        import ssl
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + route, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        ctx = ssl.create_default_context(cafile=str(self.ca)) if self.ca else None
        with urllib.request.urlopen(req, timeout=30, context=ctx) as resp:
            return json.loads(resp.read() or b"{}")

    def fault(self, image: str, kind: str | None) -> None:
        self.control("POST", "/standin/fault", {"image": image, "kind": kind})

    def down(self, seconds: float) -> None:
        self.control("POST", "/standin/down", {"seconds": seconds})

    def calls(self) -> dict[str, int]:
        return dict(self.control("GET", "/standin/calls"))

    def reset_calls(self) -> None:
        self.control("POST", "/standin/calls/reset", {})

    def workflows(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "/standin/workflows")["workflows"])


def s3_repository(endpoint_url: str, bucket: str, secret: str = "argo-artifacts") -> dict[str, Any]:
    """Argo's artifact repository shape for an S3 endpoint URL (``http://host:port``)."""
    insecure = endpoint_url.startswith("http://")
    host = endpoint_url.split("://", 1)[-1].rstrip("/")
    return {"s3": {"endpoint": host, "insecure": insecure, "bucket": bucket,
                   "accessKeySecret": {"name": secret, "key": "accesskey"},
                   "secretKeySecret": {"name": secret, "key": "secretkey"}}}

