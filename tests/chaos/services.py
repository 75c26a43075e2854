"""Private Redis and PostgreSQL for the chaos suite: started, stopped and restarted on purpose.

Each runs from a temporary directory on a free loopback port, so a scenario can kill or stop it
without touching the shared services other tests (and other people) use on 6379 and 5432.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll ``condition`` until it holds; raise naming ``what`` when ``timeout`` runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} within {timeout:g} s")


class RedisServer:
    """A redis-server with the append-only file on, as docker-compose runs it."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start on the same port and directory (a restart finds its append-only file)."""
        command = [
            shutil.which("redis-server") or "redis-server",
            "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
            "--appendonly", "yes", "--save", "", "--daemonize", "no", "--protected-mode", "yes",
        ]  # fmt: skip
        log = (self.dir / "redis.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until(self.answers, 20, "redis-server did not answer")

    def answers(self) -> bool:
        """Whether the server answers PING."""
        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """Shut down cleanly (SIGTERM: the append-only file is flushed)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(20)
        self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)


def postgres_bin(name: str) -> str:
    """Path of a PostgreSQL server binary (pg_ctl, initdb), newest installed version first."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]), reverse=True)
    if found:
        return found[0]
    on_path = shutil.which(name)
    if on_path is None:
        raise RuntimeError(f"PostgreSQL's {name} not found under /usr/lib/postgresql/*/bin nor on PATH")
    return on_path


def runuser() -> str | None:
    """Path of ``runuser`` (util-linux), which lives in sbin: a PATH without it still finds it."""
    return shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")


def missing_servers() -> str:
    """Why this machine cannot start a private Redis and PostgreSQL ('' when it can): the chaos scenarios' and
    the production-section test's."""
    if shutil.which("redis-server") is None:
        return "needs Redis: redis-server is not installed (the test starts a private one)"
    for name in ("initdb", "pg_ctl"):
        try:
            postgres_bin(name)
        except RuntimeError:
            return f"needs PostgreSQL: {name} is not installed (the test starts a private cluster)"
    if os.geteuid() == 0 and runuser() is None:
        return "needs PostgreSQL: runuser is not installed (as root the private cluster runs as postgres)"
    return ""


class PostgresCluster:
    """A throw-away PostgreSQL cluster (initdb) with trust auth on loopback.

    initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` user.
    """

    def __init__(self, root: Path) -> None:
        self.dir = root / "pg"
        self.port = free_port()
        self.database = "financehub_chaos"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = [runuser() or "runuser", "-u", "postgres", "--"]
            shutil.chown(root, "postgres")
        self.log_path = root / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *command: str, timeout: float = 120) -> None:
        subprocess.run([*self._as_user, *command], check=True, capture_output=True, timeout=timeout)

    def init(self) -> None:
        """Create the cluster and the database, and start it."""
        self._run(
            postgres_bin("initdb"), "-D", str(self.dir), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"
        )
        self.start()
        with psycopg.connect(self.admin_dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')

    def admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=3"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(postgres_bin("pg_ctl"), "-D", str(self.dir), "-o", options, "-l", str(self.log_path), "-w", "start")
        wait_until(self.answers, 30, "PostgreSQL did not accept connections")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``fast`` ends every session at once, as an outage does to clients."""
        self._run(postgres_bin("pg_ctl"), "-D", str(self.dir), "-m", mode, "-w", "stop")

    def answers(self) -> bool:
        try:
            with psycopg.connect(self.admin_dsn()) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False


class PrivateServices:
    """Redis and PostgreSQL of one chaos session under one temporary directory."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="fh-chaos-"))
        self.redis = RedisServer(self.root)
        self.postgres = PostgresCluster(self.root)

    def start(self) -> PrivateServices:
        self.redis.start()
        self.postgres.init()
        return self

    def close(self) -> None:
        """Stop both servers and remove their files."""
        self.redis.stop()
        try:
            self.postgres.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped (a scenario left it down, or it never started)
        shutil.rmtree(self.root, ignore_errors=True)
