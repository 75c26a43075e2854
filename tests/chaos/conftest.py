"""Fixtures of the chaos suite: private services for the session, a clean stack per scenario.

Long scenarios run only under ``make chaos`` (``FINANCEHUB_CHAOS=1`` or a ``-m`` naming chaos);
the default run keeps the ones marked ``chaos_short``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

import pytest

from tests.fixtures.brokers import amqp_vhost, process_on_broker, unavailable
from tests.fixtures.services import unavailable as unavailable_service
from tests.fixtures.worker import report

from .fake import FakeProviderServer
from .observe import reset_database
from .rabbit import RABBITMQ_BIN, RabbitNode
from .services import PrivateServices, missing_servers
from .stack import Stack, database_alias, harness_app


def chaos_requested(config: pytest.Config) -> bool:
    """Whether this run asked for the whole chaos suite."""
    return os.environ.get("FINANCEHUB_CHAOS") == "1" or "chaos" in (config.getoption("markexpr") or "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if chaos_requested(config):
        return
    long = [i for i in items if i.get_closest_marker("chaos") and not i.get_closest_marker("chaos_short")]
    if long:
        config.hook.pytest_deselected(items=long)
        dropped = set(map(id, long))
        items[:] = [i for i in items if id(i) not in dropped]


@pytest.fixture(scope="session")
def chaos_services() -> Iterator[PrivateServices]:
    """Redis and PostgreSQL of our own, migrated, for the whole session (skipped, or failed in CI, without
    their server programs)."""
    reason = missing_servers()
    if reason:
        unavailable_service(reason)
    services = PrivateServices().start()
    try:
        yield services
    finally:
        if os.environ.get("FINANCEHUB_CHAOS_KEEP") == "1":
            report(f"chaos: kept the private services' files in {services.root}")
            services.redis.stop()
            services.postgres.stop("immediate")
        else:
            services.close()


@pytest.fixture(scope="session")
def chaos_fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


@pytest.fixture(scope="session")
def migrated(chaos_services: PrivateServices, chaos_fake: FakeProviderServer) -> PrivateServices:
    """The private database with every migration applied (by manage.py, as a deploy does)."""
    Stack(chaos_services, chaos_fake, harness_app(chaos_services.redis.url)).manage("migrate", "--noinput")
    return chaos_services


@pytest.fixture(scope="session")
def chaos_rabbit(chaos_services: PrivateServices) -> Iterator[RabbitNode]:
    """A RabbitMQ node of our own (started the first time a scenario runs on RabbitMQ)."""
    if shutil.which("rabbitmq-server") is None and not RABBITMQ_BIN.exists():
        unavailable("rabbitmq-server is not installed")
    node = RabbitNode(chaos_services.root)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def chaos_broker(request: pytest.FixtureRequest) -> str:
    """The broker of a scenario: Redis, unless the test is parametrised onto ``amqp`` (a private RabbitMQ)."""
    return getattr(request, "param", "redis")


@contextlib.contextmanager
def broker_for(kind: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """'' for the private Redis; for RabbitMQ, a fresh vhost of the private node (the test process stamps for it)."""
    if kind != "amqp":
        yield ""
        return
    rabbit: RabbitNode = request.getfixturevalue("chaos_rabbit")
    if not rabbit.answers():
        rabbit.start()  # a scenario left it down
    with amqp_vhost(rabbit.url, rabbit.ctl) as url, process_on_broker(url):
        yield url


@pytest.fixture
def stack(
    migrated: PrivateServices, chaos_fake: FakeProviderServer, chaos_broker: str, django_db_blocker, request
) -> Iterator[Stack]:
    """A stack with empty tables, an empty broker and a fault-free provider server."""
    services = migrated
    if not services.postgres.answers():
        services.postgres.start()
    if not services.redis.answers():
        services.redis.start()
    services.redis.client().flushall()
    shutil.rmtree(services.root / "var", ignore_errors=True)
    chaos_fake.clear_faults()
    chaos_fake.clear_requests()
    with broker_for(chaos_broker, request) as amqp_url:
        stack = Stack(services, chaos_fake, harness_app(amqp_url or services.redis.url), amqp_url=amqp_url)
        with django_db_blocker.unblock(), database_alias(services.postgres.url):
            reset_database()
            try:
                yield stack
            finally:
                stack.stop_all()
                if stack.fake is not chaos_fake:
                    stack.fake.stop()
                stack.app.close()
