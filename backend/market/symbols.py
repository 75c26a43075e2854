"""The one symbol pattern shared by models, forms, commands and task input, and the checks that use it.

Every entry point (admin form, model validation, ``load_demo_assets``, ``backfill``, direct task calls,
replayed dead letters) checks its input here BEFORE any query: a NUL byte reaching PostgreSQL is a
``DataError``, not a clean refusal. A refusal names the value, escaped, and nothing else.
"""

import re

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from backend.common.logsafe import escape

# Upper-case tickers as exchanges print them: BRK.B, BF-B, BTC. No slash, space, dot-dot
# or control character can reach a provider URL or a log line through a symbol.
SYMBOL_PATTERN = r"\A[A-Z0-9](?:[A-Z0-9]|[.\-](?=[A-Z0-9])){0,19}\Z"
SYMBOL_RE = re.compile(SYMBOL_PATTERN)
SYMBOL_RULE = "1-20 upper-case letters or digits, optionally joined by single '.' or '-'"

# \A and \Z, not ^ and $: '$' also matches before a trailing newline.
# CoinGecko ids are lower-case slugs (bitcoin, wrapped-bitcoin).
PROVIDER_ID_PATTERN = r"\A[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){0,63}\Z"
# Asset type codes are slugs (AssetType.code).
ASSET_CLASS_RE = re.compile(r"\A[a-z0-9][a-z0-9_\-]{0,31}\Z")
# How much of a refused value an error message shows.
SHOWN_CHARS = 40

validate_provider_id = RegexValidator(
    PROVIDER_ID_PATTERN,
    message="A provider id is a lower-case slug: letters, digits and single hyphens.",
    code="invalid_provider_id",
)


class InvalidInputError(ValueError):
    """Input refused before any query; the message names the value, escaped. Retrying cannot help."""


def shown(value: object) -> str:
    """A value as an error message may show it: its repr, cut short, every control character escaped."""
    if isinstance(value, str) and len(value) > SHOWN_CHARS:
        return escape(repr(value[:SHOWN_CHARS])) + "..."
    return escape(repr(value))


def is_valid_symbol(symbol: object) -> bool:
    """Return whether ``symbol`` is a string matching the strict ticker pattern."""
    return isinstance(symbol, str) and SYMBOL_RE.fullmatch(symbol) is not None


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds a character that must not reach a log, a terminal or the database (NUL)."""
    return escape(text) != text


def validate_symbol(value: object) -> None:
    """Django validator: refuse anything but a strict ticker, naming the value."""
    if not is_valid_symbol(value):
        # No params: the value may hold '%', which ValidationError would try to interpolate.
        raise ValidationError(f"{shown(value)} is not a valid symbol ({SYMBOL_RULE}).", code="invalid_symbol")


def validate_plain_text(value: object) -> None:
    """Django validator: refuse text holding control characters (NUL, CR, LF, ESC, bidi controls)."""
    if isinstance(value, str) and has_control_characters(value):
        raise ValidationError(f"{shown(value)} holds control characters.", code="control_characters")


def check_symbol(value: object) -> str:
    """``value`` if it is a valid symbol, else ``InvalidInputError`` naming it."""
    if not is_valid_symbol(value):
        raise InvalidInputError(f"{shown(value)} is not a valid symbol ({SYMBOL_RULE})")
    return value  # type: ignore[return-value]  # is_valid_symbol checked it is a str


def check_symbols(values: object) -> list[str]:
    """A list of valid symbols, or ``InvalidInputError`` naming every invalid one (no query is made)."""
    if not isinstance(values, list | tuple):
        raise InvalidInputError(f"symbols must be a list of symbols, not {shown(values)}")
    bad = [shown(value) for value in values if not is_valid_symbol(value)]
    if bad:
        raise InvalidInputError(f"not valid symbols ({SYMBOL_RULE}): {', '.join(bad)}")
    return list(values)


def check_asset_class(value: object) -> str:
    """``value`` if it is an asset type code (a slug), else ``InvalidInputError`` naming it."""
    if not (isinstance(value, str) and ASSET_CLASS_RE.fullmatch(value)):
        raise InvalidInputError(f"{shown(value)} is not an asset class (a lower-case code such as 'stock')")
    return value
