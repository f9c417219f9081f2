"""A real multi-node Ray cluster and a real MLflow server on loopback, for tests.

Each node is its own ``ray start --block`` process with its own ``--temp-dir`` and ports,
exactly as on separate hosts; they differ only in sharing this machine's filesystem,
which stands in for the NFS that a real cluster's ``storage`` lives on.

Other Ray instances may run on this machine at the same time (other test sessions), so
nothing here ever calls ``ray stop``: a node is stopped by killing the processes whose
command line names *its* temp dir (gcs_server, raylet, log monitor, dashboard...), the
``ray start`` process itself, and their descendants (the raylet's workers). The cluster
uses its own auth token file (``RAY_AUTH_TOKEN_PATH``), not ``~/.ray/auth_token``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from sweeps.cli.ui import UI_ENVIRONMENT  # no job runner: see its comment
from tests.ports import free_port, free_ports

VENV_BIN = Path(sys.executable).parent
#: A sentence `ray start` prints once the node has registered with the GCS.
STARTED = "Ray runtime started."


#: The ports of one node that `ray start` would otherwise pick itself, one component at a
#: time, while ours are not bound yet. (No `--ray-client-server-port`: Ray refuses it
#: without the `ray[client]` extra, and starts no client server then.)
NODE_PORT_FLAGS = (
    "--node-manager-port",
    "--object-manager-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--metrics-export-port",
    "--runtime-env-agent-port",
)
HEAD_PORT_FLAGS = ("--port", "--dashboard-port")


@dataclass
class RayNode:
    name: str
    temp_dir: Path
    process: subprocess.Popen[bytes]
    log: Path
    node_id: str = ""

    def processes(self) -> list[psutil.Process]:
        """Every live process of this node: `ray start`, its daemons and their workers."""
        marker = str(self.temp_dir)
        roots: dict[int, psutil.Process] = {}
        try:
            roots[self.process.pid] = psutil.Process(self.process.pid)
        except psutil.NoSuchProcess:
            pass
        for proc in psutil.process_iter(["pid", "cmdline"]):
            if any(marker in part for part in proc.info["cmdline"] or ()):
                roots[proc.pid] = proc
        found: dict[int, psutil.Process] = {}
        for root in roots.values():
            try:
                for proc in [root, *root.children(recursive=True)]:
                    if proc.status() != psutil.STATUS_ZOMBIE:
                        found[proc.pid] = proc
            except psutil.NoSuchProcess:
                continue
        return list(found.values())

    def raylet_node_id(self) -> str:
        for proc in self.processes():
            try:
                for part in proc.cmdline():
                    if part.startswith("--node_id="):
                        return part.split("=", 1)[1]
            except psutil.NoSuchProcess:
                continue
        return ""


@dataclass
class LocalRayCluster:
    """One head and any number of worker nodes, each a separate `ray start --block`."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="swc-", dir="/tmp")))
    nodes: list[RayNode] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        # Unix socket paths live under each temp dir and must stay under ~100 characters,
        # hence a short root in /tmp rather than pytest's tmp_path.
        self.token = self.root / "auth_token"
        self.token.write_text(secrets.token_hex(32))
        self.token.chmod(0o600)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for every process that talks to this cluster (nodes, drivers)."""
        return {
            **os.environ,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self.token),
            "RAY_USAGE_STATS_ENABLED": "0",
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def start_head(self, cpus: int, timeout: float = 60) -> RayNode:
        ports = dict(zip(HEAD_PORT_FLAGS, free_ports(len(HEAD_PORT_FLAGS)), strict=False))
        self.port = ports["--port"]
        return self._start(
            "head",
            [
                "--head",
                f"--num-cpus={cpus}",
                "--include-dashboard=false",
                *(f"{flag}={port}" for flag, port in ports.items()),
            ],
            timeout,
        )

    def add_worker(self, name: str, cpus: int, timeout: float = 60) -> RayNode:
        return self._start(name, [f"--address={self.address}", f"--num-cpus={cpus}"], timeout)

    def _start(self, name: str, args: list[str], timeout: float) -> RayNode:
        temp_dir = self.root / name
        log = self.root / f"{name}.log"
        command = [
            str(VENV_BIN / "ray"),
            "start",
            "--block",
            *args,
            "--node-ip-address=127.0.0.1",
            "--disable-usage-stats",
            f"--temp-dir={temp_dir}",
            "--num-gpus=0",
            # Every port a node opens, chosen free at once (tests/ports.py), so no two of its
            # components, no two nodes and no other Ray on this machine collide. Workers take
            # theirs from Ray's own range (10002-19999), below the kernel's ephemeral ports.
            *(
                f"{flag}={port}"
                for flag, port in zip(NODE_PORT_FLAGS, free_ports(len(NODE_PORT_FLAGS)), strict=False)
            ),
        ]
        with log.open("wb") as stream:
            process = subprocess.Popen(
                command, stdout=stream, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        node = RayNode(name, temp_dir, process, log)
        self.nodes.append(node)
        deadline = time.monotonic() + timeout
        while STARTED not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"`ray start` for node {name} failed:\n{log.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.2)
        node.node_id = node.raylet_node_id()
        return node

    def kill(self, node: RayNode) -> int:
        """SIGKILL every process of ``node``, as if its host had died. Returns how many."""
        processes = node.processes()
        for proc in processes:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(processes, timeout=10)
        node.process.poll()
        return len(processes)

    def shutdown(self) -> None:
        for node in reversed(self.nodes):  # workers first, the head last
            self.kill(node)
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class MlflowServer:
    """`mlflow server` on 127.0.0.1 with a SQLite backend, in its own process group."""

    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> MlflowServer:
        return self.launch().wait_ready(timeout)

    def launch(self) -> MlflowServer:
        """Start the server without waiting (it takes tens of seconds on 2 busy cores)."""
        self.root.mkdir(parents=True, exist_ok=True)
        log = self.root / "mlflow.log"
        command = [
            str(VENV_BIN / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--backend-store-uri",
            f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination",
            str(self.root / "mlartifacts"),
            "--workers",
            "1",
        ]
        with log.open("wb") as stream:
            self.process = subprocess.Popen(
                command,
                stdout=stream,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **UI_ENVIRONMENT},
            )
        return self

    def wait_ready(self, timeout: float = 90) -> MlflowServer:
        assert self.process is not None, "launch() first"
        log = self.root / "mlflow.log"
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # the server and its workers: our group only
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)
