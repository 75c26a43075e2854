"""The one symbol pattern shared by models, forms and provider input."""

import re

from django.core.validators import RegexValidator

# Upper-case tickers as exchanges print them: BRK.B, BF-B, BTC. No slash, space, dot-dot
# or control character can reach a provider URL or a log line through a symbol.
SYMBOL_PATTERN = r"\A[A-Z0-9](?:[A-Z0-9]|[.\-](?=[A-Z0-9])){0,19}\Z"
SYMBOL_RE = re.compile(SYMBOL_PATTERN)

# \A and \Z, not ^ and $: '$' also matches before a trailing newline.
# CoinGecko ids are lower-case slugs (bitcoin, wrapped-bitcoin).
PROVIDER_ID_PATTERN = r"\A[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){0,63}\Z"

validate_symbol = RegexValidator(
    SYMBOL_PATTERN,
    message="A symbol is 1-20 upper-case letters or digits, optionally joined by single '.' or '-'.",
    code="invalid_symbol",
)
validate_provider_id = RegexValidator(
    PROVIDER_ID_PATTERN,
    message="A provider id is a lower-case slug: letters, digits and single hyphens.",
    code="invalid_provider_id",
)


def is_valid_symbol(symbol: str) -> bool:
    """Return whether ``symbol`` matches the strict ticker pattern."""
    return bool(SYMBOL_RE.fullmatch(symbol))
