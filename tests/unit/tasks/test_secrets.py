"""Redaction with this deployment's secrets: text, values, log lines, and the reprs a task message carries."""

from __future__ import annotations

import logging

import pytest
from celery.exceptions import Retry

from backend.common.redaction import RedactSecretsFilter
from backend.providers.errors import PermanentProviderError, TransientProviderError
from backend.tasks import redaction_signals, secrets
from backend.tasks.secrets import REDACTED
from tests.fixtures import failing_tasks
from tests.fixtures.deadletters import PLANTED

# PLANTED is a configured secret there (a provider key), as a deployment's keys are.
pytestmark = pytest.mark.usefixtures("isolated_fallback")


# --- Redaction ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "leak"),
    [
        (f"provider refused key {PLANTED}", PLANTED),
        ("GET https://api.example/q?symbol=AAPL&apikey=abc123def&x=1", "abc123def"),
        ("https://pro-api.example/v3?x_cg_pro_api_key=zzz999", "zzz999"),
        ("redis://:hunter2hunter@redis:6379/0", "hunter2hunter"),
        ("postgres://fin:s3cr3tpw@db:5432/financehub", "s3cr3tpw"),
        ("{'api_key': 'kkk111', 'symbol': 'AAPL'}", "kkk111"),
        ('{"password": "pw-42-xx"}', "pw-42-xx"),
        ("Authorization: Bearer tok-abc-123", "tok-abc-123"),
        ("client(token=tttt7777)", "tttt7777"),
    ],
)
def test_it_redacts_secrets_from_text(text: str, leak: str) -> None:
    redacted = secrets.redact_text(text)
    assert leak not in redacted
    assert REDACTED in redacted


def test_it_keeps_ordinary_text_and_key_errors_readable() -> None:
    text = "KeyError: 'AAPL'\nunknown symbol BRK.B for asset_class=stock"
    assert secrets.redact_text(text) == text


def test_it_redacts_credential_named_arguments_at_any_depth() -> None:
    value = {"symbols": ["AAPL"], "api_key": "x", "nested": {"client_secret": "y", "auth": [PLANTED]}}
    assert secrets.redact_value(value) == {
        "symbols": ["AAPL"],
        "api_key": REDACTED,
        "nested": {"client_secret": REDACTED, "auth": [REDACTED]},
    }


def test_the_logging_filter_redacts_messages_arguments_and_tracebacks(caplog) -> None:
    handler_filter = RedactSecretsFilter(secrets=secrets.configured_secrets)
    try:
        raise PermanentProviderError(f"bad key {PLANTED}")
    except PermanentProviderError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "refused %s", (PLANTED,), exc_info=True)
        import sys

        record.exc_info = sys.exc_info()
    handler_filter.filter(record)
    formatted = logging.Formatter().format(record)
    assert PLANTED not in formatted
    assert "PermanentProviderError" in formatted


def test_the_settings_wire_the_filter_into_every_log_line() -> None:
    from django.conf import settings

    assert "redact_secrets" in settings.LOGGING["handlers"]["console"]["filters"]


def test_published_messages_carry_redacted_argument_reprs() -> None:
    headers: dict = {}
    body = (["AAPL"], {"api_key": PLANTED, "url": f"https://u:{PLANTED}@h/x"}, {})
    redaction_signals.redact_published_reprs(headers=headers, body=body)
    assert PLANTED not in headers["kwargsrepr"]
    assert "AAPL" in headers["argsrepr"]


def _publish_in_memory(task, args, kwargs, **options) -> dict:
    """Send ``task`` through Celery's real publish path to an in-memory broker; the headers it carried."""
    from celery import signals
    from kombu import Connection

    from backend.core.celery import app

    published: dict = {}

    def keep(headers=None, **_):
        published.update(headers or {})

    signals.after_task_publish.connect(keep, weak=False)
    try:
        with Connection("memory://") as connection:
            task.apply_async(args, kwargs, producer=app.amqp.Producer(connection), **options)
    finally:
        signals.after_task_publish.disconnect(keep)
    return published


def test_a_send_redacts_its_argument_reprs_once_and_the_publish_keeps_them(monkeypatch) -> None:
    """The task-sent event needs the reprs before publishing; the publish signal does not redact them again."""

    def second_redaction(*_args, **_kwargs):
        raise AssertionError("the publish signal redacted the send's own reprs again")

    monkeypatch.setattr(redaction_signals, "redacted_repr", second_redaction)  # would turn the headers into REDACTED
    headers = _publish_in_memory(failing_tasks.leak_secret, ("BTC",), {"api_key": PLANTED})
    assert headers["argsrepr"] == "['BTC']"
    assert headers["kwargsrepr"] == f"{{'api_key': '{REDACTED}'}}"


def test_reprs_a_caller_wrote_are_still_redacted_at_publish() -> None:
    headers = _publish_in_memory(
        failing_tasks.leak_secret, ("BTC",), {"api_key": PLANTED}, kwargsrepr=f"{{'api_key': '{PLANTED}'}}"
    )
    assert PLANTED not in headers["kwargsrepr"]
    assert headers["argsrepr"] == "['BTC']"


def test_a_retry_exception_is_scrubbed_in_place() -> None:
    inner = TransientProviderError(f"throttled with {PLANTED}")
    retry = Retry(exc=inner)
    secrets.scrub_exception(retry)
    assert PLANTED not in str(inner)
