"""Control characters are escaped in every log line: one record is one line, whatever it carries."""

from __future__ import annotations

import io
import logging
import logging.config

import pytest
from django.conf import settings

from backend.common.logsafe import SafeFormatter, escape, indent_continuation

FORGED = "AAPL\r\n2026-12-01 00:00:00,000 ERROR forged.logger forged line"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("A\r\nB", "A\\r\\nB"),
        ("A\x00", "A\\x00"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("tab\there", "tab\\there"),
        ("A\x85B", "A\\x85B"),
        ("line\u2028sep", "line\\u2028sep"),
        ("bidi\u202eevil", "bidi\\u202eevil"),
        ("plain BRK.B 100 \\r €", "plain BRK.B 100 \\r €"),
    ],
)
def test_it_escapes_every_control_character(raw: str, shown: str) -> None:
    assert escape(raw) == shown


def test_it_keeps_the_lines_of_a_traceback_but_indents_them() -> None:
    assert indent_continuation("Traceback:\n  File x\nValueError: A\r\x1b") == (
        "    Traceback:\n      File x\n    ValueError: A\\r\\x1b"
    )


def _capture(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("test.logsafe")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_a_record_with_crlf_in_its_arguments_stays_one_line() -> None:
    logger, stream = _capture(SafeFormatter("%(levelname)s %(name)s %(message)s"))
    logger.info("backfill of %s skipped", FORGED)
    # Celery's own lines format a dict of saferepr'd values that keep raw newlines.
    logger.info("Task %(name)s succeeded: %(return_value)s", {"name": "quotes.fetch", "return_value": FORGED})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert all(line.startswith("INFO test.logsafe ") for line in lines)
    assert "AAPL\\r\\n2026-12-01" in lines[0] and "AAPL\\r\\n2026-12-01" in lines[1]


def test_an_exception_message_cannot_start_a_line_of_its_own() -> None:
    logger, stream = _capture(SafeFormatter("%(levelname)s %(message)s"))
    try:
        raise ValueError(FORGED)
    except ValueError:
        logger.exception("fetch of %s failed", FORGED)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("ERROR fetch of AAPL\\r\\n")
    # Every traceback line is indented under its record; none can pass for a record of its own.
    assert all(line.startswith("    ") for line in lines[1:])
    assert not any(line.startswith("2026-12-01") for line in lines)


def test_the_settings_route_root_and_django_loggers_through_the_safe_formatter() -> None:
    logging.config.dictConfig(settings.LOGGING)
    for name in ("", "django", "django.server"):
        handlers = logging.getLogger(name).handlers
        assert handlers, name
        assert all(isinstance(h.formatter, SafeFormatter) for h in handlers), name


def test_a_traceback_a_filter_already_formatted_is_indented_too() -> None:
    logger, stream = _capture(SafeFormatter("%(levelname)s %(message)s"))
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "failed", (), None)
    record.exc_text = (
        "Traceback (most recent call last):\nValueError: AAPL\r\nforged"  # as a redaction filter leaves it
    )
    logger.handle(record)
    assert stream.getvalue().splitlines() == [
        "ERROR failed",
        "    Traceback (most recent call last):",
        "    ValueError: AAPL\\r",
        "    forged",
    ]
