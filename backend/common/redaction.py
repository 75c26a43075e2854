"""The one place that decides what a secret looks like and hides it: providers, dead letters, logs.

Two strengths, for two jobs:

* **URLs and provider text** (:func:`scrub_url`, :func:`scrub_text`): the query parameters providers
  really use for keys (``apikey``, ``x_cg_pro_api_key``, ...) and URL credentials become ``***``. Exact
  names only, so ``monkey=banana`` stays readable in an error message.
* **Anything stored or logged** (:func:`redact_text`, :func:`redact_value`, :class:`RedactSecretsFilter`):
  the deployment's own secret values, URL passwords, ``Authorization`` headers and any value whose name
  looks like a credential become ``[redacted]``. Broad on purpose: it is the last line before a sink.

No Django, no Celery: the secret values come from the caller (``secrets=``), read at use time.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "[redacted]"
MASK = "***"
# Shorter values than this are never treated as secrets by value: they would redact ordinary words.
MIN_SECRET_LENGTH = 6
# How much of an arbitrary object's repr is kept when a value is neither JSON nor a container.
REPR_LIMIT = 500

# Query parameters whose values are secrets (compared case-insensitively, "-" treated as "_").
SECRET_PARAMS = frozenset(
    {
        "apikey",
        "api_key",
        "key",
        "token",
        "access_token",
        "auth",
        "crumb",
        "secret",
        "signature",
        "password",
        "cmc_pro_api_key",
        "x_cg_demo_api_key",
        "x_cg_pro_api_key",
    }
)

_SECRET_PARAM_IN_TEXT = re.compile(
    r"(?i)(?<![a-z0-9_])("
    + "|".join(sorted((re.escape(p).replace("_", "[_-]") for p in SECRET_PARAMS), key=len, reverse=True))
    + r")(=|%3D)([^&\s#\"'<>]*)"
)
_HTTP_USERINFO = re.compile(r"(?i)\b(https?://)[^/\s@]+@")

# Names of dict keys whose values are never shown, whatever the value.
_SECRET_NAME = re.compile(r"key|token|secret|passw|pwd|credential|authorization", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]*):(?P<secret>[^@/\s]+)@", re.IGNORECASE)
# name=value (query strings, keyword reprs) and 'name': 'value' / "name": "value" (dict reprs, JSON)
# where the name looks like a credential. KeyError: 'AAPL' has no quotes around its name, so it stays.
_NAMED_VALUE = re.compile(
    r"""(?P<head>(?:(?P<q>['"]))?(?P<name>[A-Za-z0-9_.-]*(?:key|token|secret|passw|pwd|signature)[A-Za-z0-9_.-]*)"""
    r"""(?(q)(?P=q)\s*[:=]|=)\s*['"]?)(?P<value>[^\s'"&,;)}\]\[]+)""",
    re.IGNORECASE,
)
_AUTH_HEADER = re.compile(
    r"(?P<head>authorization['\"]?\s*[:=]\s*['\"]?(?:bearer|basic|token)?\s*)(?P<value>[^\s'\",}]+)", re.I
)


# --- URLs and provider text -----------------------------------------------------------------------
def is_secret_param(name: str) -> bool:
    """Whether a query parameter called ``name`` carries a secret."""
    return name.lower().replace("-", "_") in SECRET_PARAMS


def scrub_text(text: str) -> str:
    """Mask secret query-parameter values and URL credentials anywhere inside ``text``."""
    text = _SECRET_PARAM_IN_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _HTTP_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)


def scrub_url(url: object) -> str:
    """Return ``url`` with secret query values and any user:password masked; safe for logs and errors."""
    raw = str(url)
    try:
        parts = urlsplit(raw)
    except ValueError:
        return scrub_text(raw)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if pairs:
        masked = [(k, MASK if is_secret_param(k) else v) for k, v in pairs]
        query = urlencode(masked, safe="*,")
    else:
        query = parts.query
    # A key could also hide in a fragment or in a path someone built by hand; the text pass catches it.
    return scrub_text(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


# --- Stored and logged text -----------------------------------------------------------------------
def url_password(url: str) -> str | None:
    """The password inside a service URL (``redis://:pw@host``), if it has one."""
    match = _URL_PASSWORD.search(url or "")
    return match.group("secret") if match else None


def secret_values(candidates: Iterable[str | None]) -> list[str]:
    """The candidates worth redacting by value: long enough, unique, longest first (so a key that
    contains another is replaced whole)."""
    return sorted({v for v in candidates if v and len(v) >= MIN_SECRET_LENGTH}, key=len, reverse=True)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with the given secret values, URL passwords and credential-named values replaced."""
    if not text:
        return text
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    if ":" not in text and "=" not in text:
        return text  # every pattern below needs one of them (a symbol, most task arguments, has neither)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:{REDACTED}@", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group('head')}{REDACTED}", text)
    return _NAMED_VALUE.sub(_redact_named_value, text)


def _redact_named_value(match: re.Match[str]) -> str:
    if match.group("name").lower().endswith(("error", "exception")):
        return match.group(0)
    return f"{match.group('head')}{REDACTED}"


def redact_value(value: Any, secrets: Sequence[str] = (), *, repr_of: Callable[[Any], str] = repr) -> Any:
    """A JSON-ready copy of ``value`` with secrets redacted: credential-named keys lose their values.

    ``repr_of`` renders anything that is not JSON (Celery passes its bounded ``saferepr``).
    """
    return _redacted(value, secrets, math.inf, repr_of)[0]


def redact_shown(value: Any, secrets: Sequence[str] = (), *, budget: int, repr_of: Callable[[Any], str] = repr) -> Any:
    """:func:`redact_value` of as much of ``value`` as a repr cut at ``budget`` characters shows.

    A list or dict stops taking items once its repr is surely longer than ``budget`` and ends with
    a ``"<N more>"`` item instead, so a message carrying 500 symbols redacts the hundred or so its
    argsrepr shows, not all 500. A value whose repr fits is redacted whole, as ``redact_value`` does.
    """
    return _redacted(value, secrets, budget, repr_of)[0]


def _more(count: int) -> str:
    return f"<{count} more>"


def _redacted(value: Any, secrets: Sequence[str], budget: float, repr_of: Callable[[Any], str]) -> tuple[Any, int]:
    """(redacted copy of ``value``, cut once its repr passes ``budget``; a lower bound of that repr's length)."""
    if isinstance(value, dict):
        shown: dict[str, Any] = {}
        used = 2
        for k, v in value.items():
            if used > budget:
                shown["..."] = _more(len(value) - len(shown))
                break
            name = str(k)
            if _SECRET_NAME.search(name):
                item, length = REDACTED, len(REDACTED)
            else:
                item, length = _redacted(v, secrets, budget - used, repr_of)
            shown[name] = item
            used += len(name) + length + 4
        return shown, used
    if isinstance(value, list | tuple | set | frozenset):
        items: list[Any] = []
        used = 2
        for v in value:
            if used > budget:
                items.append(_more(len(value) - len(items)))
                break
            item, length = _redacted(v, secrets, budget - used, repr_of)
            items.append(item)
            used += length + 2
        return items, used
    if value is None or isinstance(value, bool | int | float):
        return value, len(repr(value))
    text = redact_text(value if isinstance(value, str) else repr_of(value)[:REPR_LIMIT], secrets)
    return text, len(text)


def scrub_exception(exc: BaseException | None, secrets: Sequence[str] = ()) -> None:
    """Redact an exception's arguments in place (and its causes'), so whatever formats it later
    shows no secret. Wrapped exceptions (``exc.exc``, as Celery's ``Retry`` keeps them) are scrubbed too."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        with contextlib.suppress(AttributeError, TypeError):
            exc.args = tuple(
                redact_value(a, secrets) if isinstance(a, str | dict | list | tuple) else a for a in exc.args
            )
        inner = getattr(exc, "exc", None)
        if isinstance(inner, BaseException):
            scrub_exception(inner, secrets)
        exc = exc.__cause__ or exc.__context__


class RedactSecretsFilter(logging.Filter):
    """Logging filter that redacts the message, its arguments and any traceback of every record.

    ``secrets`` is called for every record, so keys changed at run time are redacted too.
    """

    def __init__(self, name: str = "", secrets: Callable[[], Iterable[str]] | None = None) -> None:
        super().__init__(name)
        self._secrets = secrets or tuple

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            secrets = list(self._secrets())
            record.msg = redact_text(record.getMessage(), secrets)
            record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact_text(record.exc_text, secrets)
            if record.stack_info:
                record.stack_info = redact_text(record.stack_info, secrets)
        except Exception:  # noqa: BLE001 - a logging filter must never stop a log line
            record.msg, record.args = "[log line dropped: redaction failed]", None
        return True
