"""LOG_FORMAT=json: one JSON object per line, the work's fields on it, and the same escaping and
redaction as the plain format."""

from __future__ import annotations

import io
import json
import logging

from backend.common import logcontext
from backend.common.jsonlog import MAX_SYMBOLS, JsonFormatter
from backend.common.logcontext import LogContextFilter, log_fields
from backend.common.redaction import RedactSecretsFilter

SECRET = "sk-live-abcdef123456"
FORGED = 'AAPL\r\n{"level": "ERROR", "message": "forged"}'


def _capture() -> tuple[logging.Logger, io.StringIO]:
    """A logger wired like settings.LOGGING's console handler in json mode."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(LogContextFilter())
    handler.addFilter(RedactSecretsFilter(secrets=lambda: [SECRET]))
    logger = logging.getLogger("test.jsonlog")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_object_with_time_level_logger_and_message() -> None:
    logger, stream = _capture()
    logger.info("fetched %d quotes", 3)
    (line,) = lines(stream)
    assert line["message"] == "fetched 3 quotes"
    assert (line["level"], line["logger"]) == ("INFO", "test.jsonlog")
    assert line["ts"].endswith("+00:00") and isinstance(line["process"], int)
    assert "task_id" not in line  # no work bound: no empty fields


def test_the_bound_work_fields_ride_on_every_line_inside_the_block_only() -> None:
    logger, stream = _capture()
    with log_fields(task_id="t-1", task_name="quotes.fetch", queue="high", symbols=["AAPL", "MSFT"]):
        with log_fields(provider="yahoo"):
            logger.info("asking")
        logger.warning("done")
    logger.info("idle")
    asking, done, idle = lines(stream)
    assert asking["provider"] == "yahoo" and asking["symbols"] == ["AAPL", "MSFT"]
    assert (done["task_id"], done["task_name"], done["queue"]) == ("t-1", "quotes.fetch", "high")
    assert "provider" not in done and "task_id" not in idle
    assert logcontext.current() == {}


def test_a_field_passed_with_extra_wins_over_the_bound_one() -> None:
    logger, stream = _capture()
    with log_fields(provider="yahoo"):
        logger.info("failing over", extra={"provider": "alphavantage"})
    assert lines(stream)[0]["provider"] == "alphavantage"


def test_control_characters_cannot_forge_a_line_or_a_field() -> None:
    logger, stream = _capture()
    with log_fields(symbols=[FORGED]):
        logger.info("skipped %s\u2028", FORGED)
    raw = stream.getvalue()
    assert raw.count("\n") == 1 and raw.isascii()
    (line,) = lines(stream)
    # Escaped exactly as the plain format escapes it: the decoded message shows \r\n, never breaks.
    assert line["message"].startswith("skipped AAPL\\r\\n{") and line["message"].endswith("\\u2028")
    assert line["symbols"] == ['AAPL\\r\\n{"level": "ERROR", "message": "forged"}']


def test_secrets_are_redacted_in_the_message_and_the_traceback() -> None:
    logger, stream = _capture()
    try:
        raise ValueError(f"bad key {SECRET}")
    except ValueError:
        logger.exception("call with apikey=%s failed", SECRET)
    raw = stream.getvalue()
    assert SECRET not in raw
    (line,) = lines(stream)
    assert "[redacted]" in line["message"]
    assert line["exception"].startswith("Traceback (most recent call last):\n")
    assert "ValueError: bad key [redacted]" in line["exception"]


def test_a_huge_batch_lists_some_symbols_and_counts_the_rest() -> None:
    logger, stream = _capture()
    with log_fields(symbols=[f"S{i}" for i in range(MAX_SYMBOLS + 7)]):
        logger.info("batch")
    (line,) = lines(stream)
    assert len(line["symbols"]) == MAX_SYMBOLS and line["symbols_omitted"] == 7
