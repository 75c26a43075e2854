"""``symbol__any_of``: the same rows as ``symbol__in``, with the list as one parameter on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Q

from backend.market.models import Asset

pytestmark = pytest.mark.django_db


def test_any_of_selects_what_in_selects(make_asset) -> None:
    for symbol in ("AAPL", "MSFT", "BRK.B", "ONEL"):
        make_asset(symbol)
    wanted = ["MSFT", "BRK.B", "NOPE", "AAPL"]
    by_any = set(Asset.objects.filter(symbol__any_of=wanted).values_list("symbol", flat=True))
    assert by_any == set(Asset.objects.filter(symbol__in=wanted).values_list("symbol", flat=True))
    assert by_any == {"AAPL", "MSFT", "BRK.B"}
    assert set(Asset.objects.filter(~Q(symbol__any_of=wanted)).values_list("symbol", flat=True)) == {"ONEL"}


def test_an_empty_list_matches_nothing_without_a_query(make_asset, django_assert_num_queries) -> None:
    make_asset("AAPL")
    with django_assert_num_queries(0):
        assert list(Asset.objects.filter(symbol__any_of=[])) == []


def test_on_postgresql_the_list_is_one_parameter() -> None:
    sql, params = Asset.objects.filter(symbol__any_of=["A", "B", "C"]).query.sql_with_params()
    if connection.vendor == "postgresql":
        assert "= ANY(%s)" in sql and ["A", "B", "C"] in [list(p) if isinstance(p, list) else p for p in params]
    else:
        assert params.count("A") == 1 and "IN (%s, %s, %s)" in sql
