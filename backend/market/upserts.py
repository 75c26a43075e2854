"""Bulk upserts on a natural key: one statement per call, no model instances; one bad row costs itself.

A refresh writes hundreds of rows per batch. Django's ``bulk_create(update_conflicts=True)`` builds a
model instance per row and quotes every value of every row into the SQL text (Django's psycopg
cursor binds on the client); on PostgreSQL this sends the whole batch as ONE JSON parameter instead
and lets the server unpack it (``jsonb_array_elements``), which costs the worker a ``json.dumps``.
The parameter is read as ``jsonb``: parsed once, where plain ``json`` re-parses a row's text for each
of its columns (a 500-quote upsert: ~9 ms of server time as ``json``, ~5.5 ms as ``jsonb``).
Other databases (the embedded SQLite default) take the same statement row by row (``executemany``).

What one row can do to the others, and what happens instead:

* a text longer than its column or holding a NUL, a float that is not finite: refused before the
  statement, with the reason (``Upserted.refused``). Text is cast to ``text``, never to
  ``varchar(n)``: an explicit ``::varchar(n)`` cast TRUNCATES silently on PostgreSQL, which once
  stored cut URLs (the lookup by the whole URL then failed the page);
* any other value the database refuses (a CHECK constraint, a numeric overflow): the batch is halved
  until the refused rows stand alone, and each is refused with the database's reason;
* a row whose owner (the asset) is deleted: left out by the statement itself. An owner deleted WHILE
  the statement runs fails its foreign key (Django's are checked at commit); the statement is then
  run again, with a fresh snapshot that no longer sees the owner. Either way the owner is reported in
  ``Upserted.gone``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from operator import itemgetter
from typing import Any

from django.db import DatabaseError, DataError, IntegrityError, connection, transaction
from django.db.models import CharField, FloatField, Model, TextField

logger = logging.getLogger(__name__)

# PostgreSQL's codes for "a row's owner vanished under the statement" and "deadlocked with the delete":
# both are worth running the statement again (a few times: each run takes a fresh snapshot).
_RACE_CODES = frozenset({"23503", "40P01"})
RACE_ATTEMPTS = 3


@dataclass(frozen=True)
class UpsertTable:
    """A table written by upsert: its columns in row order, the natural key, the columns a conflict updates.

    ``owner`` names the foreign key (a field of ``model``) whose row must still exist for a row to be
    written; ``None`` writes every row. No ``update`` columns: a conflicting row is left as it is.
    """

    model: type[Model]
    columns: tuple[str, ...]
    key: tuple[str, ...]
    update: tuple[str, ...]
    owner: str | None = None

    def __post_init__(self) -> None:
        missing = set(self.key) | set(self.update) | ({self.owner} if self.owner else set())
        missing -= set(self.columns)
        if missing:
            raise ValueError(f"{self.model.__name__}: {sorted(missing)} are not among the columns")

    @cached_property
    def _fields(self) -> list:
        by_column = {f.column: f for f in self.model._meta.concrete_fields}
        return [by_column[name] for name in self.columns]

    @cached_property
    def _texts(self) -> tuple[tuple[int, str, int | None], ...]:
        """(position, column, longest value or None) of every text column."""
        return tuple(
            (i, f.column, f.max_length)
            for i, f in enumerate(self._fields)
            if isinstance(f, CharField | TextField)  # URLField, SlugField... are CharFields
        )

    @cached_property
    def _floats(self) -> tuple[tuple[int, str], ...]:
        """(position, column) of every float column."""
        return tuple((i, f.column) for i, f in enumerate(self._fields) if isinstance(f, FloatField))

    def misfit(self, row: Sequence[object]) -> str | None:
        """Why the table cannot hold ``row`` as it is, or None: a text too long for its column, a NUL,
        a float that is not finite."""
        for at, column, limit in self._texts:
            value = row[at]
            if not isinstance(value, str):
                continue
            if limit is not None and len(value) > limit:
                return f"{column} is {len(value)} characters, its column holds {limit}"
            if "\x00" in value:
                return f"{column} holds a NUL character, which the database cannot store"
        for at, column in self._floats:
            value = row[at]
            if isinstance(value, float) and not math.isfinite(value):
                return f"{column} is {value}, not a finite number"
        return None

    @cached_property
    def owner_at(self) -> int | None:
        """Position of the owner's id in a row."""
        return self.columns.index(self.owner) if self.owner else None

    def _owner_check(self, value: str) -> str:
        """``EXISTS (...)`` for the owner row of the value ``value`` (an SQL expression), or TRUE."""
        if self.owner is None:
            return "TRUE"
        target = self._owner_model._meta
        return f"EXISTS (SELECT 1 FROM {_q(target.db_table)} WHERE {_q(target.pk.column)} = {value})"

    @property
    def _owner_model(self) -> type[Model]:
        assert self.owner_at is not None
        return self._fields[self.owner_at].related_model

    def _conflict(self) -> str:
        target = f"ON CONFLICT ({', '.join(map(_q, self.key))})"
        if not self.update:
            return f"{target} DO NOTHING"
        return f"{target} DO UPDATE SET {', '.join(f'{_q(c)} = EXCLUDED.{_q(c)}' for c in self.update)}"

    @cached_property
    def postgresql_sql(self) -> str:
        """The statement that unpacks one JSON array of row arrays on the server."""
        casts = [f"(e.row->>{i})::{_cast_type(f)}" for i, f in enumerate(self._fields)]
        owner_value = casts[self.owner_at] if self.owner_at is not None else ""
        return (
            f"INSERT INTO {_q(self.model._meta.db_table)} ({', '.join(map(_q, self.columns))}) "
            f"SELECT {', '.join(casts)} FROM jsonb_array_elements(%s::jsonb) AS e(row) "
            f"WHERE {self._owner_check(owner_value)} {self._conflict()}"
        )

    @cached_property
    def row_sql(self) -> str:
        """The statement that writes one row (for ``executemany``); the owner's value comes last."""
        values = ", ".join(["%s"] * len(self.columns))
        return (
            f"INSERT INTO {_q(self.model._meta.db_table)} ({', '.join(map(_q, self.columns))}) "
            f"SELECT {values} WHERE {self._owner_check('%s')} {self._conflict()}"
        )

    @cached_property
    def owner_constraint(self) -> str | None:
        """The name of the owner's foreign key constraint on PostgreSQL (None without an owner)."""
        if self.owner is None:
            return None
        target = self._owner_model._meta
        with connection.cursor() as cursor:
            constraints = connection.introspection.get_constraints(cursor, self.model._meta.db_table)
        for name, info in constraints.items():
            if info["columns"] == [self.owner] and info["foreign_key"] == (target.db_table, target.pk.column):
                return name
        raise LookupError(f"{self.model._meta.db_table}.{self.owner} has no foreign key constraint")


@dataclass(frozen=True)
class Refusal:
    """A row the table could not hold, and why."""

    row: tuple[object, ...]
    reason: str


@dataclass(frozen=True)
class Upserted:
    """What one upsert did with ``offered`` distinct keys: ``written`` rows, ``refused`` rows (with the reason)
    and the owner ids found ``gone`` (their rows were not written)."""

    offered: int
    written: int
    refused: tuple[Refusal, ...] = ()
    gone: frozenset[object] = frozenset()

    @property
    def dropped(self) -> int:
        """Rows neither written nor refused: their owner row was gone (or, with no update columns, they existed)."""
        return self.offered - self.written - len(self.refused)


def upsert(table: UpsertTable, rows: Sequence[Sequence[object]]) -> Upserted:
    """Insert ``rows`` (tuples in ``table.columns`` order), updating where the key exists.

    Within one call the last row of a key wins. A row the table cannot hold is refused alone, with the
    reason; rows whose owner no longer exists are not written (the owner ids are in ``gone``).
    """
    key_of = itemgetter(*[table.columns.index(c) for c in table.key])
    latest = {key_of(row): tuple(row) for row in rows}
    refused: list[Refusal] = []
    fit: list[tuple[object, ...]] = []
    # In key order: two writers of overlapping rows (or a writer and a cascading delete) lock them in
    # the same order, so they queue behind each other instead of deadlocking.
    for key in sorted(latest):
        row = latest[key]
        reason = table.misfit(row)
        if reason is None:
            fit.append(row)
        else:
            refused.append(Refusal(row, reason))
    written, refused_by_database = _write(table, fit) if fit else (0, [])
    refused += refused_by_database
    unwritten = len(fit) - written - len(refused_by_database)
    gone = _gone_owners(table, fit) if unwritten and table.owner_at is not None else frozenset()
    return Upserted(len(latest), written, tuple(refused), gone)


def _write(table: UpsertTable, rows: list[tuple[object, ...]]) -> tuple[int, list[Refusal]]:
    """Write ``rows``; when the database refuses the batch for a value, halve it until each refused row
    stands alone (k bad rows among n cost about 2*k*log2(n) statements) and refuse those rows."""
    try:
        return _statement(table, rows), []
    except (DataError, IntegrityError) as exc:
        if len(rows) == 1:
            reason = _database_reason(exc)
            logger.info("%s row refused by the database: %s", table.model.__name__, reason)
            return 0, [Refusal(rows[0], reason)]
    half = len(rows) // 2
    first, refused_first = _write(table, rows[:half])
    second, refused_second = _write(table, rows[half:])
    return first + second, refused_first + refused_second


def _statement(table: UpsertTable, rows: Sequence[Sequence[object]]) -> int:
    """One statement for ``rows``, run again when an owner vanished (or a delete deadlocked with it) meanwhile.

    Inside the caller's transaction it runs in a savepoint, with the owner's foreign key checked at the
    statement (Django defers it to COMMIT, past where a failure could be told apart); in autocommit the
    statement is its own transaction and the key is checked as it commits.
    """
    for attempt in range(1, RACE_ATTEMPTS + 1):
        try:
            if not connection.in_atomic_block:
                return _execute(table, rows)
            with transaction.atomic():
                return _execute(table, rows, check_owner_now=True)
        except DatabaseError as exc:
            if getattr(exc.__cause__, "sqlstate", None) not in _RACE_CODES or attempt == RACE_ATTEMPTS:
                raise
            logger.info(
                "an owner of %d %s rows was deleted while they were written (%s); writing them again",
                len(rows),
                table.model.__name__,
                type(exc.__cause__).__name__,
            )
    raise AssertionError("unreachable: the last attempt returns or raises")


def _execute(table: UpsertTable, rows: Sequence[Sequence[object]], *, check_owner_now: bool = False) -> int:
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            # One transaction for the batch, as PostgreSQL's one statement is: in autocommit SQLite
            # commits (and syncs) each row of executemany alone, 250 bars ~0.3 s instead of ~5 ms,
            # and seconds while make run's other processes wait for the write lock between them.
            with transaction.atomic():
                return _upsert_rows(cursor, table, rows)
        constraint = table.owner_constraint if check_owner_now else None
        if constraint:
            cursor.execute(f"SET CONSTRAINTS {_q(constraint)} IMMEDIATE")
        written = _upsert_json(cursor, table, rows)
        if constraint:
            cursor.execute(f"SET CONSTRAINTS {_q(constraint)} DEFERRED")
        return written


def _upsert_json(cursor: Any, table: UpsertTable, rows: Sequence[Sequence[object]]) -> int:
    """PostgreSQL: the whole batch as one JSON parameter, unpacked by the server."""
    # allow_nan=False: a NaN would reach PostgreSQL as invalid JSON; refuse it here, by name.
    cursor.execute(table.postgresql_sql, [json.dumps(rows, default=_text_of_batch(), allow_nan=False)])
    return cursor.rowcount


def _text_of_batch() -> Callable[[object], str]:
    """``str`` for the values JSON has no type for (Decimal, datetime), each distinct datetime formatted once.

    A batch repeats its datetimes (one ``fetched_at`` for every row, a provider's market time for
    most): formatting is ~1 us a value, a lookup a tenth of that.
    """
    texts: dict[datetime, str] = {}

    def text(value: object) -> str:
        if type(value) is datetime:
            known = texts.get(value)
            if known is None:
                known = texts[value] = str(value)
            return known
        return str(value)

    return text


def _upsert_rows(cursor: Any, table: UpsertTable, rows: Sequence[Sequence[object]]) -> int:
    """Any database: the one-row statement for each row, values prepared by their model fields."""
    owner_at = table.owner_at
    params = []
    for row in rows:
        values = [f.get_db_prep_save(v, connection) for f, v in zip(table._fields, row, strict=True)]
        params.append(values + ([row[owner_at]] if owner_at is not None else []))
    cursor.executemany(table.row_sql, params)
    return cursor.rowcount  # summed over the rows by the driver


def _gone_owners(table: UpsertTable, rows: Sequence[Sequence[object]]) -> frozenset[object]:
    """The owner ids of ``rows`` that no longer exist (asked only when some rows were not written)."""
    assert table.owner_at is not None
    offered = {row[table.owner_at] for row in rows}
    present = table._owner_model._base_manager.filter(pk__in=offered).values_list("pk", flat=True)
    return frozenset(offered - set(present))


def _cast_type(field: Any) -> str:
    # Text goes in as text: the column's own length check then refuses what is too long, where an
    # explicit varchar(n) cast would cut it silently.
    return "text" if isinstance(field, CharField | TextField) else field.cast_db_type(connection)


def _database_reason(exc: Exception) -> str:
    """The database's one-line reason for refusing a row (its first line: the DETAIL repeats the values)."""
    text = str(exc.__cause__ or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _q(name: str) -> str:
    return connection.ops.quote_name(name)
