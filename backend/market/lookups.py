"""``field__any_of=[...]``: membership in a long list as one parameter on PostgreSQL."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db.models import CharField, Lookup


@CharField.register_lookup
class AnyOf(Lookup):
    """``symbol__any_of=symbols``: ``symbol = ANY(%s)`` with the whole list as ONE parameter on PostgreSQL.

    A quote batch filters on 500 symbols; as ``IN`` Django prepares each value and the database driver
    quotes each into the SQL text (~8 ms a query). Elsewhere (SQLite) it is the plain ``IN``.
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def get_prep_lookup(self) -> list[Any]:
        """The values as given: one list, nothing prepared one by one."""
        return list(self.rhs)

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        """``lhs IN (%s, ...)``: one placeholder per value."""
        lhs, lhs_params = self._lhs(compiler, connection)
        return f"{lhs} IN ({', '.join(['%s'] * len(self.rhs))})", [*lhs_params, *self.rhs]

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        """``lhs = ANY(%s)``: the list travels as one array parameter."""
        lhs, lhs_params = self._lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", [*lhs_params, list(self.rhs)]

    def _lhs(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        if not self.rhs:
            raise EmptyResultSet  # nothing can match: Django answers without a query
        return self.process_lhs(compiler, connection)
