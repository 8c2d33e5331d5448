"""The container backends of isolation mode docker, for tests that run once per backend.

Mode docker runs on an engine (`isolation.engine`: docker, podman) with an OCI runtime
(`isolation.oci_runtime`: runc, runsc = gVisor). The docker e2e and escape tests take the
`container_backend` fixture (see conftest.py) and run for each combination; nothing is skipped:
scripts/setup.sh installs podman and runsc, registers runsc with both engines and copies the test
images to podman, and `Backend.ensure_ready` fails loudly when any of that is missing.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = "mcpproxy-fixture:test"


@dataclass(frozen=True)
class Backend:
    engine: str
    runtime: str

    @property
    def id(self) -> str:
        return self.engine if self.runtime == "runc" else f"{self.engine}-{self.runtime}"

    @property
    def gvisor(self) -> bool:
        return self.runtime == "runsc"

    def cli(self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """Runs the engine's CLI (`docker ...` / `podman ...`)."""
        return subprocess.run([self.engine, *args], capture_output=True, text=True, check=check, input=input, timeout=timeout)

    def settings(self) -> dict:
        """The `docker_isolation` keys that select this backend."""
        return {"engine": self.engine, "oci_runtime": self.runtime}

    def managed_containers(self, instance: str | None = None, server: str | None = None) -> list[str]:
        flt = ["--filter", "label=mcpproxy.managed=true"]
        if instance:
            flt += ["--filter", f"label=mcpproxy.instance={instance}"]
        if server:
            flt += ["--filter", f"label=mcpproxy.server={server}"]
        out = self.cli("ps", "-a", "-q", "--no-trunc", *flt).stdout
        return [x for x in out.split() if x]

    def inspect(self, container: str) -> dict:
        return json.loads(self.cli("inspect", container).stdout)[0]

    def runtime_of(self, info: dict) -> str:
        """The OCI runtime an inspected container runs with, as the engine reports it."""
        if self.engine == "podman":
            return info.get("OCIRuntime", "")
        return info["HostConfig"]["Runtime"]

    def ensure_ready(self) -> None:
        info = subprocess.run([self.engine, "info"], capture_output=True, text=True)
        if info.returncode != 0:
            pytest.fail(f"{self.engine} does not answer ({info.stderr.strip()[-300:]}): run scripts/setup.sh")
        subprocess.run([os.path.join(ROOT, "scripts", "build-test-images.sh")], check=True, capture_output=True)
        if self.engine == "podman":
            subprocess.run([os.path.join(ROOT, "scripts", "podman-test-images.sh")], check=True, capture_output=True)
        if self.gvisor:
            # A trivial container under runsc proves the registration (daemon.json / containers.conf).
            probe = self.cli("run", "--rm", "--runtime", "runsc", "--network", "none", "--log-driver", "none",
                             "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=8192:8192",
                             IMAGE, "/fixture", "--name", "probe", check=False, input="", timeout=120)
            if probe.returncode != 0:
                pytest.fail(f"{self.engine} cannot run runsc ({probe.stderr.strip()[-300:]}): run scripts/setup.sh")


BACKENDS = [Backend("docker", "runc"), Backend("podman", "runc"), Backend("docker", "runsc"), Backend("podman", "runsc")]
BACKEND_PARAMS = [pytest.param(b, id=b.id) for b in BACKENDS]


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def container_backend(request) -> Backend:
    """Each container backend in turn (module scope: a module's tests run per backend)."""
    backend: Backend = request.param
    backend.ensure_ready()
    return backend
