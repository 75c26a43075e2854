"""bin/services.py: what `make test` (and CI through it) runs against, found, started or left out."""

from __future__ import annotations

import importlib.util
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bin" / "services.py"


@pytest.fixture
def services(monkeypatch):
    """The script as a module, unable to start anything on this machine."""
    spec = importlib.util.spec_from_file_location("financehub_services_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "start_redis", lambda port: False)
    monkeypatch.setattr(module, "start_postgresql", lambda port: False)
    monkeypatch.setattr(module, "start_rabbitmq", lambda port: False)
    return module


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # free again once closed: nothing answers there


@pytest.fixture
def pong_server() -> Iterator[int]:
    """A loopback server that answers PING like Redis; yields its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                if conn.recv(64).startswith(b"PING"):
                    conn.sendall(b"+PONG\r\n")

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


def test_urls_already_set_are_kept_and_nothing_is_probed(services, monkeypatch, capsys) -> None:
    def probe(*args):
        raise AssertionError("probed a service although its URL was set")

    monkeypatch.setattr(services, "port_open", probe)
    monkeypatch.setattr(services, "redis_answers", probe)
    env = {
        "DATABASE_URL": "postgres://me@db:5432/mine",
        "REDIS_URL": "redis://cache:6379/3",
        "FINANCEHUB_TEST_AMQP_URL": "amqp://me:pw@rabbit:5672/",
    }
    assert services.main(env) == 0
    out, err = capsys.readouterr()
    assert out == ""  # the environment's own values stay
    assert "DATABASE_URL from the environment" in err and "REDIS_URL from the environment" in err
    assert "FINANCEHUB_TEST_AMQP_URL from the environment" in err


def test_services_that_answer_are_exported(services, monkeypatch, pong_server: int, capsys) -> None:
    created = []
    monkeypatch.setattr(services, "ensure_database", lambda name, **where: created.append((name, where)) or "")
    # Something listens on the PostgreSQL port too: taken as PostgreSQL (the database step is faked).
    assert services.main({}, pg_port=pong_server, redis_port=pong_server, amqp_port=pong_server) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"export DATABASE_URL=postgres://postgres@127.0.0.1:{pong_server}/financehub",
        f"export REDIS_URL=redis://127.0.0.1:{pong_server}/0",
        f"export FINANCEHUB_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:{pong_server}/",
    ]
    assert created == [("financehub", {"host": "127.0.0.1", "port": pong_server, "user": "postgres"})]


def test_missing_services_are_left_out_and_named_so_their_tests_skip(services, capsys) -> None:
    port = closed_port()
    assert services.main({}, pg_port=port, redis_port=port, amqp_port=port) == 0
    out, err = capsys.readouterr()
    assert out == ""  # SQLite and the filesystem broker: the embedded defaults
    assert "PostgreSQL: nothing answers" in err and "Redis: nothing answers PING" in err
    assert "RabbitMQ: nothing answers" in err
    assert err.count("its tests will be skipped") == 3


def test_when_ci_requires_services_a_missing_one_fails_the_run(services, capsys) -> None:
    port = closed_port()
    assert services.main({"FINANCEHUB_REQUIRE_SERVICES": "1"}, pg_port=port, redis_port=port, amqp_port=port) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("FINANCEHUB_REQUIRE_SERVICES=1: failing") == 3


def test_a_database_the_server_refuses_is_a_missing_service_with_the_reason(services, monkeypatch, pong_server) -> None:
    monkeypatch.setattr(services, "ensure_database", lambda name, **where: 'role "postgres" does not exist')
    exports, problem = services.find_postgresql({}, port=pong_server)
    assert exports == {} and problem.endswith('refused us: role "postgres" does not exist')
