"""Control characters never reach a log line or a terminal as they are.

A symbol, a provider's error text or a task argument may carry CR/LF (a forged log line), ESC (terminal
escape sequences), NUL or Unicode line/bidi controls. ``escape`` rewrites each as a visible escape
(``\\r``, ``\\x1b``, ``\\u2028``); ``SafeFormatter`` applies it to every record a handler writes, so one
record is always one line, and tracebacks keep their lines but are indented under their record.
"""

from __future__ import annotations

import logging
import re

# C0 and C1 controls and DEL, Unicode line/paragraph separators, bidi embeddings/overrides/isolates
# and the directional marks: everything that can break a line, move the cursor or reorder text.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Continuation lines of a traceback start with this, so no line of it can pass for a new record.
CONTINUATION_INDENT = "    "


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape(value: object) -> str:
    """``str(value)`` with every control character written as a visible escape: always one line."""
    return _UNSAFE.sub(_escape_char, str(value))


def escape_lines(text: str) -> str:
    """Escape control characters but keep line breaks (for multi-line text such as tracebacks)."""
    return _UNSAFE_BUT_NEWLINE.sub(_escape_char, text)


def indent_continuation(text: str) -> str:
    """Escape ``text`` and indent each of its lines, so it reads as the continuation of a record."""
    return "\n".join(CONTINUATION_INDENT + line for line in escape_lines(text).split("\n"))


class SafeFormatter(logging.Formatter):
    """A formatter whose record line is escaped and whose traceback or stack is indented under it.

    It formats ``exc_text`` too when a filter (the redaction filter) has already filled it in, and it
    leaves ``exc_text`` as it found it, so another handler's formatter is not handed our indentation.
    """

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = escape(self.formatMessage(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + indent_continuation(record.exc_text)
        if record.stack_info:
            line += "\n" + indent_continuation(self.formatStack(record.stack_info))
        return line
