"""One JSON object per log line (``LOG_FORMAT=json``), for log pipelines that parse fields.

Each line carries the time (UTC, ISO 8601), level, logger, process, the message, the work fields
``logcontext`` bound (task id and name, queue, symbols, provider) when there are any, and the
traceback when there is one. The message is escaped by ``logsafe`` exactly as the plain format
escapes it, and the redaction filter has run on the record before it gets here, so a JSON line
shows nothing the plain line would hide. ``ensure_ascii`` keeps every line one line of ASCII.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from backend.common.logcontext import FIELDS
from backend.common.logsafe import escape, escape_lines

# Most symbols one line lists; a 500-symbol batch says how many it left out instead.
MAX_SYMBOLS = 50


def _field(name: str, value: Any) -> Any:
    if name == "symbols" and isinstance(value, list | tuple):
        return [escape(s) for s in value[:MAX_SYMBOLS]]
    return escape(value)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object (see the module docstring for its keys)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": escape(record.getMessage()),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value not in (None, "", [], ()):
                line[name] = _field(name, value)
        symbols = getattr(record, "symbols", None)
        if isinstance(symbols, list | tuple) and len(symbols) > MAX_SYMBOLS:
            line["symbols_omitted"] = len(symbols) - MAX_SYMBOLS
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = escape_lines(record.exc_text)
        if record.stack_info:
            line["stack"] = escape_lines(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=True, default=str)
