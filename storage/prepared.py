"""Statements a conversation's turn runs on every update, compiled once per database and
run straight on the driver's cursor of the session's connection.

SQLAlchemy spends about 0.15–0.3 ms of Python on every statement it runs — looking up the
compiled form, an execution context, result metadata, ORM loading — against some 30 µs
for SQLite to run an indexed statement. A turn runs five or six of them, so that cost is
most of a turn. A `Prepared` statement keeps SQLAlchemy for what it is good at (building
the SQL for each dialect, the column types' conversions) and does the rest once:

- the statement is built and compiled once per dialect: the SQL text, the order of its
  parameters, each parameter's bind processor and each result column's result
  processor (an IN list has one parameter per item: `one_of` for a list fixed in the
  statement, `any_of` for one of a given length);
- a run takes the DB-API connection of the session's transaction (the same connection and
  transaction the ORM uses, so both see each other's writes), executes on its cursor
  (`executemany` for many parameter sets) and converts the rows; the transaction starts
  as the dialect starts it (the bot's SQLite driver: `BEGIN IMMEDIATE` behind its write
  lock; asyncpg: its transaction on the first statement);
- the driver's errors come out as SQLAlchemy's (`IntegrityError`, `OperationalError` …),
  as from `Session.execute`, and a lost connection is invalidated in the pool.

The same code runs on SQLite and on PostgreSQL: only the compiled text differs. Sync,
like the ORM's own calls: a caller on an `AsyncSession` runs it in `run_sync` (the
asyncpg cursor waits in that greenlet). No ORM events or flush happen here: a caller
that changed ORM objects the statement reads flushes first.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Concatenate, Generic, ParamSpec, TypeVar

from pydantic_core import PydanticUndefined
from sqlalchemy import ColumnElement, bindparam, exc, insert, or_
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, class_mapper
from sqlalchemy.orm.base import instance_state
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

M = TypeVar("M")
T = TypeVar("T")
P = ParamSpec("P")
Processor = Callable[[Any], Any]
Observer = Callable[[Connection, str, float], None]


class _Options:
    """What a dialect's `do_execute` reads of an execution context: the options, and that
    no AsyncConnection waits for the driver to have awaited something."""

    __slots__ = ("execution_options",)
    needs_await = False

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.execution_options = options


@dataclass(frozen=True, slots=True)
class Compiled:
    """A statement as one dialect runs it."""

    sql: str
    names: tuple[str, ...]  # the parameters, in the order of the SQL's placeholders
    defaults: tuple[Any, ...]  # a value given when the statement was built, else MISSING
    binds: tuple[Processor | None, ...]
    results: tuple[tuple[int, Processor], ...]  # (column index, processor) of those that have one

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        out = []
        for name, default, process in zip(self.names, self.defaults, self.binds, strict=True):
            if default is MISSING or name in values:
                value = values[name]
            elif isinstance(default, Generated):
                value = default.make(None)
            else:
                value = default
            out.append(value if process is None else process(value))
        return tuple(out)

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        if not self.results:
            return tuple(raw)
        row = list(raw)
        for index, process in self.results:
            row[index] = process(row[index])
        return tuple(row)


@dataclass(frozen=True, slots=True)
class Generated:
    """A column default made at each run (SQLAlchemy's callable default, given no context)."""

    make: Callable[[Any], Any]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def compile_for(statement: ClauseElement, dialect: Dialect) -> Compiled:
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if not compiled.positional or compiled.positiontup is None:  # pragma: no cover
        raise ValueError(f"{dialect.name}: a prepared statement needs positional parameters")
    names = tuple(compiled.positiontup)
    binds = [compiled.binds[name] for name in names]
    for bind in binds:
        if bind.expanding:
            raise ValueError(f"parameter {bind.key!r}: a prepared statement takes no IN lists")
    # An INSERT's columns left out get their defaults, as the ORM would give them.
    prefetched = {column.key: column.default for column in getattr(compiled, "insert_prefetch", ())}
    if getattr(compiled, "update_prefetch", ()):
        raise ValueError("a prepared UPDATE sets every column it changes (no onupdate)")
    defaults: list[Any] = []
    for name, bind in zip(names, binds, strict=True):
        default = prefetched.get(name)
        if default is not None and default.is_callable:
            defaults.append(Generated(default.arg))
        elif default is not None and default.is_scalar:
            defaults.append(default.arg)
        else:
            defaults.append(MISSING if bind.required else bind.effective_value)
    columns = tuple(getattr(statement, "exported_columns", ()))
    results = []
    for index, column in enumerate(columns):
        process = column.type.dialect_impl(dialect).result_processor(dialect, None)
        if process is not None:
            results.append((index, process))
    return Compiled(
        sql=compiled.string,
        names=names,
        defaults=tuple(defaults),
        binds=tuple(bind.type.dialect_impl(dialect).bind_processor(dialect) for bind in binds),
        results=tuple(results),
    )


class Prepared:
    """One statement, built by `build` when first run on a dialect.

    `rows` gives the result rows as tuples (a SELECT, or a DML statement with RETURNING:
    the portable way to learn a new row's id), `run` the number of rows a DML statement
    changed, `run_many` runs it once per parameter set in one `executemany` (the rows
    changed on SQLite; -1 from asyncpg, which does not count them)."""

    # Each run is reported to these (the connection, the SQL, its seconds from execute to
    # the last row fetched): the benchmarks count them (`observe`).
    observers: ClassVar[tuple[Observer, ...]] = ()

    @classmethod
    def observe(cls, observer: Observer) -> Callable[[], None]:
        """Report every run to `observer` from now on; the call returned stops it."""
        cls.observers = (*cls.observers, observer)

        def stop() -> None:
            cls.observers = tuple(each for each in cls.observers if each is not observer)

        return stop

    def __init__(
        self,
        build: Callable[[], ClauseElement] | None = None,
        *,
        build_for: Callable[[str], ClauseElement] | None = None,
    ) -> None:
        """`build` the statement, or `build_for` a dialect's name when the words differ."""
        if (build is None) == (build_for is None):
            raise TypeError("give build or build_for")
        self._build_for = build_for or (lambda _name: build())  # type: ignore[misc]
        self._compiled: dict[str, Compiled] = {}

    def compiled(self, dialect: Dialect) -> Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            statement = self._build_for(dialect.name)
            found = self._compiled[dialect.name] = compile_for(statement, dialect)
        return found

    def rows(self, session: Session, /, **values: Any) -> list[tuple[Any, ...]]:
        def fetch(cursor: Any, compiled: Compiled) -> list[tuple[Any, ...]]:
            return [compiled.row(raw) for raw in cursor.fetchall()]

        if session.autoflush:  # as an ORM query would: it sees the objects changed so far
            session.flush()
        return self._execute(session, values, fetch)

    # The same from an AsyncSession (see `run_sync`).
    async def fetch(self, session: AsyncSession, /, **values: Any) -> list[tuple[Any, ...]]:
        return await run_sync(session, self.rows, **values)

    async def fetch_first(self, session: AsyncSession, /, **values: Any) -> tuple[Any, ...] | None:
        return await run_sync(session, self.first, **values)

    async def execute(self, session: AsyncSession, /, **values: Any) -> int:
        return await run_sync(session, self.run, **values)

    async def load_first(
        self, session: AsyncSession, entity: Entity[M], /, **values: Any
    ) -> M | None:
        """The first row as `entity`'s object, in the session (see `Entity.load`)."""

        def load(sync: Session) -> M | None:
            row = self.first(sync, **values)
            return None if row is None else entity.load(sync, row)

        return await run_sync(session, load)

    async def load_all(self, session: AsyncSession, entity: Entity[M], /, **values: Any) -> list[M]:
        def load(sync: Session) -> list[M]:
            return entity.load_all(sync, self.rows(sync, **values))

        return await run_sync(session, load)

    def first(self, session: Session, /, **values: Any) -> tuple[Any, ...] | None:
        rows = self.rows(session, **values)
        return rows[0] if rows else None

    def run(self, session: Session, /, **values: Any) -> int:
        return self._execute(session, values, lambda cursor, _compiled: cursor.rowcount)

    def run_many(self, session: Session, rows: Sequence[Mapping[str, Any]], /) -> int:
        if not rows:
            return 0
        return self._execute(session, rows, lambda cursor, _compiled: cursor.rowcount, many=True)

    def _execute(
        self,
        session: Session,
        values: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        result: Callable[[Any, Compiled], Any],
        *,
        many: bool = False,
    ) -> Any:
        connection = _connection(session)
        dialect = connection.dialect
        compiled = self.compiled(dialect)
        if many:
            assert isinstance(values, Sequence)
            parameters: Any = [compiled.parameters(each) for each in values]
        else:
            assert isinstance(values, Mapping)
            parameters = compiled.parameters(values)
        observers = Prepared.observers
        started = time.perf_counter() if observers else 0.0
        fairy = connection.connection
        options = _Options(connection.get_execution_options())
        try:
            cursor = _cursor(dialect, fairy, options.execution_options)
            try:
                if many:
                    dialect.do_executemany(cursor, compiled.sql, parameters, options)  # type: ignore[arg-type]
                else:
                    dialect.do_execute(cursor, compiled.sql, parameters, options)  # type: ignore[arg-type]
                out = result(cursor, compiled)
            finally:
                cursor.close()
        except dialect.loaded_dbapi.Error as error:
            raise _translated(connection, compiled.sql, parameters, error) from error
        if observers:
            elapsed = time.perf_counter() - started
            for observe in observers:
                observe(connection, compiled.sql, elapsed)
        return out


# Session.info: (a weak reference to the transaction, its connection). Weak: a strong one
# would tie the session to itself (session → info → transaction → session), and every
# turn would leave its session, transaction and connection to the garbage collector.
_CONNECTION = "regulars_prepared_connection"


async def run_sync(
    session: AsyncSession,
    function: Callable[Concatenate[Session, P], T],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """`session.run_sync(function, …)`, or `function(sync_session, …)` called straight
    when nothing in it can wait: an inline SQLite transaction that has begun and holds
    the write lock (`sqlite_driver`'s `runs_inline`). Each trip into SQLAlchemy's
    greenlet costs 40–60 µs inside a turn (a new greenlet, two switches of a deep stack),
    and a turn makes four or five; its first statement, which may wait for the lock, and
    every transaction on PostgreSQL still take the trip."""
    sync = session.sync_session
    if _runs_inline(sync):
        return function(sync, *args, **kwargs)
    return await session.run_sync(function, *args, **kwargs)


def _runs_inline(session: Session) -> bool:
    cached = session.info.get(_CONNECTION)
    transaction = session.get_transaction()
    if transaction is None:
        return _begins_inline(session)
    if cached is None or cached[0]() is not transaction:
        return False
    connection: Connection = cached[1]
    if connection.closed or connection.invalidated:
        return False
    runs_inline = getattr(connection.dialect, "runs_inline", None)
    return runs_inline is not None and bool(
        runs_inline(connection.connection.dbapi_connection, connection.get_execution_options())
    )


def _begins_inline(session: Session) -> bool:
    """A session bound to a connection whose transaction SQLite has begun already, for a
    turn holding the write lock (`sqlite_driver`'s `begins_inline`): beginning it and its
    first statement wait for nothing."""
    bind = session.bind
    if not isinstance(bind, Connection) or bind.closed or bind.invalidated:
        return False
    begins_inline = getattr(bind.dialect, "begins_inline", None)
    return begins_inline is not None and bool(
        begins_inline(bind.connection.dbapi_connection, bind.get_execution_options())
    )


def _connection(session: Session) -> Connection:
    """The connection of the session's transaction, looked up once per transaction (the
    ORM's lookup costs more than a statement)."""
    transaction = session.get_transaction()
    cached = session.info.get(_CONNECTION)
    if transaction is not None and cached is not None and cached[0]() is transaction:
        connection: Connection = cached[1]
        if not connection.closed:
            return connection
    connection = session.connection()
    session.info[_CONNECTION] = (weakref.ref(session.get_transaction()), connection)
    return connection


def _cursor(dialect: Dialect, fairy: Any, options: Mapping[str, Any]) -> Any:
    """The driver's cursor; a dialect with `prepared_cursor` (the bot's SQLite driver:
    inline or through a worker thread, as the transaction runs) makes its own."""
    own = getattr(dialect, "prepared_cursor", None)
    if own is not None:
        return own(fairy.dbapi_connection, options)
    return fairy.cursor()


def _translated(
    connection: Connection, sql: str, parameters: Any, error: Any
) -> exc.StatementError:
    """The driver's error as SQLAlchemy's; a lost connection is dropped from the pool."""
    dialect = connection.dialect
    disconnect = dialect.is_disconnect(error, connection.connection, None)
    if disconnect:
        connection.invalidate(error)
    return exc.DBAPIError.instance(
        sql,
        parameters,
        error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=disconnect,
        dialect=dialect,
    )


class Entity(Generic[M]):
    """How the rows of a prepared statement become a mapped class's objects: its columns,
    in the order the statement selects them, and `load`, which gives the object of a row
    in the session as the ORM would have loaded it. The mapper is read on first use."""

    def __init__(self, cls: type[M]) -> None:
        self.cls = cls
        self._shape: tuple[Any, tuple[str, ...], tuple[Any, ...], tuple[int, ...]] | None = None
        self._insert: tuple[Prepared, dict[str, Callable[[], Any]]] | None = None

    def _mapped(self) -> tuple[Any, tuple[str, ...], tuple[Any, ...], tuple[int, ...]]:
        if self._shape is None:
            mapper = class_mapper(self.cls)
            keys = tuple(prop.key for prop in mapper.column_attrs)
            columns = tuple(prop.columns[0] for prop in mapper.column_attrs)
            primary = {column.key for column in mapper.primary_key}
            indexes = tuple(i for i, column in enumerate(columns) if column.key in primary)
            self._shape = mapper, keys, columns, indexes
        return self._shape

    @property
    def columns(self) -> tuple[Any, ...]:
        return self._mapped()[2]

    @property
    def keys(self) -> tuple[str, ...]:
        """The mapped attributes, in the order of `columns`."""
        return self._mapped()[1]

    def __len__(self) -> int:
        return len(self._mapped()[1])

    def load(self, session: Session, row: Sequence[Any], *, attach: bool = True) -> M | None:
        """The object of `row` (the entity's columns, as `columns` orders them); None for
        a row of NULLs (an outer join that found nothing).

        `attach`: the object is in the session as a loaded one — the session's own when it
        has it already (as a query gives it), else a new one whose changes the flush
        writes. Without: a detached object, for a caller that writes it itself."""
        mapper, keys, _columns, primary = self._mapped()
        ident = tuple(row[index] for index in primary)
        if any(value is None for value in ident):
            return None
        key = mapper.identity_key_from_primary_key(ident)
        if attach:
            existing = session.identity_map.get(key)
            if existing is not None:
                return existing
        instance = mapper.class_manager.new_instance()
        # Set past the instrumentation: loaded values, no history, as the ORM loads them.
        instance.__dict__.update(zip(keys, row, strict=True))
        state = instance_state(instance)
        state.key = key
        if attach:  # persistent in the session, as its loader makes an object it read
            session.identity_map.add(state)
            state.session_id = session.hash_key
        return instance

    def insert(self, session: Session, /, *, attach: bool = True, **values: Any) -> M:
        """A new row, written now (one INSERT … RETURNING its key), as its object: what
        adding `cls(**values)` to the session and flushing give, as `load` gives it
        (`attach`: in the session, else detached), without the model's constructor and
        the ORM's unit of work — some 0.4 ms for one row, ten times the statement. The
        fields left out take the model's defaults; a pending change of the session is
        flushed first, so a row the new one names exists."""
        statement, defaults = self._inserting()
        unknown = values.keys() - defaults.keys()
        if unknown:
            raise TypeError(f"{self.cls.__name__} has no field {', '.join(sorted(unknown))}")
        given = {key: values[key] if key in values else make() for key, make in defaults.items()}
        session.flush()
        returned = statement.first(session, **given)
        assert returned is not None
        _mapper, keys, _columns, primary = self._mapped()
        keyed = iter(returned)
        row = [next(keyed) if index in primary else given[key] for index, key in enumerate(keys)]
        loaded = self.load(session, row, attach=attach)
        assert loaded is not None
        return loaded

    def _inserting(self) -> tuple[Prepared, dict[str, Callable[[], Any]]]:
        if self._insert is None:
            mapper, keys, columns, primary = self._mapped()
            table = mapper.local_table
            written = [
                (key, column)
                for i, (key, column) in enumerate(zip(keys, columns, strict=True))
                if i not in primary
            ]
            statement = Prepared(
                lambda: (
                    insert(table)
                    .values({key: bindparam(key, type_=column.type) for key, column in written})
                    .returning(*(columns[i] for i in primary))
                )
            )
            fields = getattr(self.cls, "model_fields", {})
            self._insert = (
                statement,
                {key: _default_of(self.cls, key, fields.get(key)) for key, _ in written},
            )
        return self._insert

    def load_all(self, session: Session, rows: Iterable[Sequence[Any]]) -> list[M]:
        loaded = (self.load(session, row) for row in rows)
        return [each for each in loaded if each is not None]


def _default_of(cls: type, key: str, field: Any) -> Callable[[], Any]:
    """The model's default of a field (pydantic's `FieldInfo`), made afresh for each row."""
    factory = getattr(field, "default_factory", None)
    if factory is not None:
        return factory
    default = getattr(field, "default", PydanticUndefined)
    if default is PydanticUndefined:

        def required() -> Any:
            raise TypeError(f"{cls.__name__}: {key} is required")

        return required
    return lambda: default


def one_of(column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN (values)` for a list fixed when the statement is built, as plain
    parameters (SQLAlchemy's IN takes its list at each execution)."""
    return or_(*(column == value for value in values))


def any_of(column: Any, name: str, count: int) -> ColumnElement[bool]:
    """`column IN (:name_0, … :name_<count-1>)`: a statement for lists of one length;
    `items(name, values)` gives the parameters."""
    return column.in_([bindparam(f"{name}_{index}") for index in range(count)])


def items(name: str, values: Sequence[Any]) -> dict[str, Any]:
    return {f"{name}_{index}": value for index, value in enumerate(values)}
