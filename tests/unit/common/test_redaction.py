"""The one redaction module: provider URL scrubbing, broad redaction of stored text, the log filter."""

from __future__ import annotations

import logging
import subprocess
import sys

from backend.common.redaction import (
    REDACTED,
    RedactSecretsFilter,
    redact_shown,
    redact_text,
    redact_value,
    scrub_url,
    secret_values,
    url_password,
)

KEY = "k3y-value-0123456789"


def test_it_redacts_the_secret_values_it_is_given_and_nothing_short() -> None:
    assert redact_text(f"refused {KEY}", [KEY]) == f"refused {REDACTED}"
    assert secret_values(["abc", None, "", KEY, KEY]) == [KEY]


def test_text_without_a_colon_or_equals_sign_still_loses_a_given_secret_value() -> None:
    """Symbols and most task arguments skip the pattern passes; a secret by value is still replaced."""
    assert redact_text(f"AAPL{KEY}", [KEY]) == f"AAPL{REDACTED}"
    assert redact_text("AAPL", [KEY]) == "AAPL"
    assert redact_text("api_key=abcdef123456") == f"api_key={REDACTED}"
    assert redact_text("redis://:hunter2hunter@redis") == f"redis://:{REDACTED}@redis"


def test_url_password_finds_the_password_of_a_service_url() -> None:
    assert url_password("redis://:hunter2hunter@redis:6379/0") == "hunter2hunter"
    assert url_password("redis://redis:6379/0") is None


def test_provider_urls_keep_their_shape_with_keys_masked() -> None:
    assert scrub_url(f"https://api.test/q?symbol=IBM&apikey={KEY}") == "https://api.test/q?symbol=IBM&apikey=***"


def test_values_of_unknown_types_are_shown_through_the_given_repr() -> None:
    assert redact_value({"when": object()}, repr_of=lambda v: "<object>") == {"when": "<object>"}


def test_a_value_whose_repr_fits_is_redacted_whole() -> None:
    value = ["stock", ["AAPL", KEY], {"api_key": "x", "url": f"redis://:{KEY}@h/0"}, (1, 2.5, None, True)]
    assert redact_shown(value, [KEY], budget=1024) == redact_value(value, [KEY])


def test_a_cut_repr_redacts_only_what_it_shows_and_says_how_much_it_left_out() -> None:
    """The argsrepr of a 500-symbol batch redacts the symbols its 1,024 characters show, not all 500."""
    from celery.utils.saferepr import saferepr

    shown = redact_shown(["stock", [f"SYM{i}" for i in range(500)], 7, {"send": True}], [KEY], budget=1024)
    symbols = shown[1]
    assert 100 < len(symbols) < 200 and symbols[:2] == ["SYM0", "SYM1"]
    assert symbols[-1] == f"<{501 - len(symbols)} more>"
    assert shown[2:] == ["<2 more>"]  # the budget was spent inside the symbols
    secrets_everywhere = [KEY, {"token": KEY, "k": [f"x={KEY}"] * 300}, [f"redis://:{KEY}@h"] * 300]
    for budget in (10, 100, 1024):
        text = saferepr(redact_shown(secrets_everywhere, [KEY], budget=budget), budget)
        assert KEY not in text and "[redacted" in text


def test_the_log_filter_asks_for_the_secrets_at_every_record() -> None:
    current: list[str] = []
    log_filter = RedactSecretsFilter(secrets=lambda: current)
    first = logging.LogRecord("x", logging.INFO, __file__, 1, "key %s", (KEY,), None)
    log_filter.filter(first)
    assert KEY in first.getMessage()  # not a secret yet
    current.append(KEY)
    second = logging.LogRecord("x", logging.INFO, __file__, 1, "key %s", (KEY,), None)
    log_filter.filter(second)
    assert second.getMessage() == f"key {REDACTED}"


def test_the_configured_console_handler_redacts_the_deployment_keys(settings) -> None:
    settings.COINGECKO_API_KEY = KEY
    handler = next(h for h in logging.getLogger().handlers if h.filters)
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "coingecko said %s", (f"bad key {KEY}",), None)
    assert all(f.filter(record) for f in handler.filters)
    assert KEY not in record.getMessage()


def test_the_module_imports_neither_django_nor_celery() -> None:
    code = "import sys, backend.common.redaction; print(sorted(m for m in ('django', 'celery') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
