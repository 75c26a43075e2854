#!/usr/bin/env python3
"""Find or start the PostgreSQL, Redis and RabbitMQ the test suite runs against; print them as shell exports.

`make test` runs ``eval "$(python bin/services.py)"`` before pytest, for a newcomer and for CI
(`.ci/run`) alike, so both runs are the same thing:

* ``DATABASE_URL`` / ``REDIS_URL`` already set: kept as they are. Nothing is probed, started or
  created, so the script can never touch a database it was not pointed at.
* otherwise PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 are used when they answer, and
  started when they do not and this machine can start them (``pg_ctlcluster``, ``redis-server``);
  the database ``financehub`` is created when missing (the tests' own is ``test_financehub``).
* RabbitMQ (the second broker of the tests marked ``both_brokers``, tests/fixtures/brokers.py) likewise
  on 127.0.0.1:5672, started with ``rabbitmq-server -detached`` when installed; an existing
  ``FINANCEHUB_TEST_AMQP_URL`` is kept as it is.
* a service that is absent and cannot be started is left out: the settings fall back to SQLite and
  the filesystem broker, and the tests that need the service are skipped with a reason naming it,
  unless ``FINANCEHUB_REQUIRE_SERVICES=1`` (CI): then this script exits 1 and the run fails.

Running it again is harmless: a service that answers is used as it is. Messages go to stderr and
never carry a password; stdout holds only the ``export`` lines.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
PG_PORT = 5432
REDIS_PORT = 6379
AMQP_PORT = 5672
DB_NAME = "financehub"
START_WAIT_SECONDS = 30.0
# A cold RabbitMQ node (the Erlang VM, then its plugins) takes 5-20 s to listen here, more on a busy host.
AMQP_START_WAIT_SECONDS = 90.0


def say(message: str) -> None:
    """One line for the person running the tests (stderr: stdout is eval'ed)."""
    print(f"services: {message}", file=sys.stderr)


def wait_for(check: Callable[[], bool], seconds: float) -> bool:
    """Poll ``check`` until it holds (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def redis_answers(host: str, port: int) -> bool:
    """Whether a Redis on ``host:port`` answers PING."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(port: int) -> bool:
    """Start a Redis without persistence on loopback (data and log under var/redis), if installed."""
    server = shutil.which("redis-server")
    if server is None:
        return False
    data = REPO_DIR / "var" / "redis"
    data.mkdir(parents=True, exist_ok=True)
    command = [
        server, "--daemonize", "yes", "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no",
        "--dir", str(data), "--logfile", str(data / "redis.log"),
    ]  # fmt: skip
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return wait_for(lambda: redis_answers(HOST, port), START_WAIT_SECONDS)


def start_postgresql(port: int) -> bool:
    """Start the Debian/Ubuntu cluster ``<version>/main`` (needs the rights to), if there is one."""
    control = shutil.which("pg_ctlcluster")
    clusters = sorted(Path("/etc/postgresql").glob("*/main"), key=lambda path: path.parent.name)
    if control is None or not clusters:
        return False
    version = clusters[-1].parent.name
    command = [control, "--skip-systemctl-redirect", version, "main", "start"]
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return wait_for(lambda: port_open(HOST, port), START_WAIT_SECONDS)


def start_rabbitmq(port: int) -> bool:
    """Start the machine's RabbitMQ node in the background (``rabbitmq-server -detached``), if installed."""
    server = shutil.which("rabbitmq-server")
    if server is None:
        return False
    subprocess.run([server, "-detached"], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_for(lambda: port_open(HOST, port), AMQP_START_WAIT_SECONDS):
        return False
    control = shutil.which("rabbitmqctl")
    if control is not None:  # listening comes a moment before the node takes vhost commands
        subprocess.run([control, "-q", "await_startup", "--timeout", "60"], check=False, capture_output=True)
    return True


def ensure_database(name: str, *, host: str, port: int, user: str) -> str:
    """Create database ``name`` when it is missing; '' on success, else why it could not.

    The password, if the server wants one, comes from PGPASSWORD (libpq reads it), never from here.
    """
    try:
        import psycopg
        from psycopg import sql
    except ImportError:
        return "psycopg is not installed (make install-dev installs it)"
    try:
        with psycopg.connect(
            host=host, port=port, user=user, dbname="postgres", autocommit=True, connect_timeout=5
        ) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                say(f"created database {name}")
    except psycopg.Error as exc:
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ""


def find_postgresql(env: dict[str, str], *, port: int = PG_PORT) -> tuple[dict[str, str], str]:
    """(exports, why it is missing): the DATABASE_URL to use, or the reason there is none."""
    if env.get("DATABASE_URL"):
        say("database: DATABASE_URL from the environment, as it is")
        return {}, ""
    if not port_open(HOST, port):
        if not start_postgresql(port):
            return {}, f"PostgreSQL: nothing answers on {HOST}:{port} and it could not be started here"
        say(f"started PostgreSQL on {HOST}:{port}")
    user = env.get("PGUSER") or "postgres"
    problem = ensure_database(DB_NAME, host=HOST, port=port, user=user)
    if problem:
        return {}, f"PostgreSQL on {HOST}:{port} refused us: {problem}"
    say(f"database: PostgreSQL {HOST}:{port}/{DB_NAME} (the tests use test_{DB_NAME})")
    return {"DATABASE_URL": f"postgres://{user}@{HOST}:{port}/{DB_NAME}"}, ""


def find_redis(env: dict[str, str], *, port: int = REDIS_PORT) -> tuple[dict[str, str], str]:
    """(exports, why it is missing): the REDIS_URL to use, or the reason there is none."""
    if env.get("REDIS_URL"):
        say("redis: REDIS_URL from the environment, as it is")
        return {}, ""
    if not redis_answers(HOST, port):
        if not start_redis(port):
            return {}, f"Redis: nothing answers PING on {HOST}:{port} and it could not be started here"
        say(f"started Redis on {HOST}:{port}")
    say(f"redis: {HOST}:{port} database 0")
    return {"REDIS_URL": f"redis://{HOST}:{port}/0"}, ""


def find_rabbitmq(env: dict[str, str], *, port: int = AMQP_PORT) -> tuple[dict[str, str], str]:
    """(exports, why it is missing): the FINANCEHUB_TEST_AMQP_URL to use, or the reason there is none."""
    if env.get("FINANCEHUB_TEST_AMQP_URL"):
        say("rabbitmq: FINANCEHUB_TEST_AMQP_URL from the environment, as it is")
        return {}, ""
    if not port_open(HOST, port):
        if not start_rabbitmq(port):
            return {}, f"RabbitMQ: nothing answers on {HOST}:{port} and it could not be started here"
        say(f"started RabbitMQ on {HOST}:{port}")
    say(f"rabbitmq: {HOST}:{port} (the both_brokers tests make their own vhosts)")
    return {"FINANCEHUB_TEST_AMQP_URL": f"amqp://guest:guest@{HOST}:{port}/"}, ""


def main(
    env: dict[str, str] | None = None,
    *,
    pg_port: int = PG_PORT,
    redis_port: int = REDIS_PORT,
    amqp_port: int = AMQP_PORT,
) -> int:
    """Print the exports; 1 when a service is missing and the run requires every service."""
    env = dict(os.environ if env is None else env)
    exports: dict[str, str] = {}
    missing: list[str] = []
    found_services = (
        find_postgresql(env, port=pg_port),
        find_redis(env, port=redis_port),
        find_rabbitmq(env, port=amqp_port),
    )
    for found, problem in found_services:
        exports.update(found)
        if problem:
            missing.append(problem)
    required = env.get("FINANCEHUB_REQUIRE_SERVICES") == "1"
    for problem in missing:
        say(f"{problem}; " + ("FINANCEHUB_REQUIRE_SERVICES=1: failing" if required else "its tests will be skipped"))
    if missing and required:
        return 1
    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
