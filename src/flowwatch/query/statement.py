"""`query sql`'s statement, read with sqlglot before any engine sees it; and what its result looks like.

* :func:`check`: one read-only query, else a :class:`SqlError` (it does not parse: exit 1, with the
  position, as Athena would fail it) or a UsageError (it parses but is no query: exit 2, on both engines);
* :func:`with_table_alias`: ``flow_logs`` (the presets' name) also names the stack's Glue table;
* :func:`name_like_athena`: an unnamed result column gets the name Athena gives it (``_col0``, ``_col1``
  ... by position), so the local engine prints the header Athena prints for the same SQL;
* :func:`time_columns`: which result columns hold record times (epoch seconds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowwatch.errors import SqlError, UsageError, caret_context

if TYPE_CHECKING:
    from sqlglot import exp

#: The table name every preset uses; in `query sql` it names the stack's table whatever its Glue name.
ALIAS = "flow_logs"
#: The record fields that hold epoch seconds.
TIME_FIELDS = ("start", "end")
#: Words that start a statement (Athena, Trino, Hive, DuckDB) which sqlglot may read as an expression.
_STATEMENT_WORDS = frozenset({
    "RESET", "SHOW", "EXPLAIN", "MSCK", "CALL", "PREPARE", "EXECUTE", "DEALLOCATE", "START", "VACUUM",
    "OPTIMIZE", "UNLOAD", "GRANT", "REVOKE", "DENY", "CHECKPOINT", "EXPORT", "IMPORT", "INSTALL", "LOAD",
    "ATTACH", "DETACH", "DESCRIBE", "SUMMARIZE", "ABORT", "END", "DETACH", "FORCE", "REPAIR"})
#: Aggregates whose value is one of their input's values: min(start) is still a time.
_SAME_VALUE = ("Min", "Max", "AnyValue", "ArbitraryValue", "First", "Last")


def check(sql: str) -> None:
    """One statement that is a read-only query; SqlError (exit 1) when it does not parse, UsageError
    (exit 2) when it is not a query or when it is out of bounds (presets.MAX_SQL_*)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.errors import ParseError, TokenError

    from flowwatch.query import presets

    presets.check_bounds(sql)
    dialect = Dialect.get_or_raise("athena")
    try:
        with presets.nesting_guard():
            tokens = [t for t in dialect.tokenize(sql) if t.text]   # not Athena's marker of a Hive DDL stream
    except TokenError as exc:
        raise SqlError(f"query: SQL syntax error: {_first_line(exc)}") from None
    if not tokens:
        raise UsageError("the SQL statement is empty")
    first = tokens[0]
    other_statement = (first.token_type in dialect.parser_class.STATEMENT_PARSERS
                       or first.text.upper() in _STATEMENT_WORDS)
    try:
        with presets.nesting_guard():
            statements = [s for s in sqlglot.parse(sql, read="athena") if s is not None]
    except ParseError as exc:
        if other_statement:       # DDL/DML is refused whether or not sqlglot knows all of its syntax
            raise _refused(f"{_kind(tokens)} is not a query") from None
        raise _parse_error(sql, exc) from None
    if len(statements) != 1:
        raise UsageError(f"give exactly one SQL statement (got {len(statements)})")
    tree = statements[0]
    if isinstance(tree, exp.Query):
        if not presets.is_query(sql):
            raise _refused("this query writes or changes a setting (INTO, SET ...)")
        return
    if other_statement or isinstance(tree, (exp.Command, exp.Values)):
        raise _refused(f"{_kind(tokens)} is not a query")
    position = _position(sql, first.start)
    raise SqlError(f"query: SQL syntax error at line {position[0]}:{position[1]}: {first.text!r} does not start "
                   "a query (SELECT or WITH)", position=position, context=caret_context(sql, position))


def with_table_alias(sql: str, *, table: str, database: str) -> str:
    """``sql`` with every ``flow_logs`` (or ``<database>.flow_logs``) naming ``table``, unless the statement
    defines a ``flow_logs`` of its own (WITH flow_logs AS ...) or the table is called so anyway."""
    import sqlglot
    from sqlglot import exp

    from flowwatch.query import presets

    if table.lower() == ALIAS:
        return sql
    with presets.nesting_guard():
        tree = sqlglot.parse_one(sql, read="athena")
        if any(cte.alias_or_name.lower() == ALIAS for cte in tree.find_all(exp.CTE)):
            return sql
        refs = [t for t in tree.find_all(exp.Table)
                if t.name.lower() == ALIAS and (not t.db or t.db.lower() == database.lower())]
        if not refs:
            return sql
        for ref in refs:
            if not ref.alias:      # columns qualified with the table's name (flow_logs.srcaddr) still resolve
                ref.set("alias", exp.TableAlias(this=exp.to_identifier(ALIAS)))
            ref.set("this", exp.to_identifier(table))
        return tree.sql(dialect="athena")


def name_like_athena(sql: str) -> str:
    """``sql`` with each unnamed result column aliased as Athena names it: ``_col<position>``.

    A column reference keeps its name (``f.srcaddr`` -> ``srcaddr``); any other expression without an
    alias (``count(*)``, ``bytes / 2``) is ``_col0``, ``_col1``... by its position in the select list.
    A ``*`` before it makes the position depend on the table: that select is left as it is."""
    import sqlglot
    from sqlglot import exp

    from flowwatch.query import presets

    with presets.nesting_guard():
        tree = sqlglot.parse_one(sql, read="athena")
        changed = False
        for select in tree.find_all(exp.Select):
            for i, projection in enumerate(select.expressions):
                if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column)
                                                        and isinstance(projection.this, exp.Star)):
                    break
                if isinstance(projection, (exp.Alias, exp.Column, exp.Dot)):
                    continue
                projection.replace(exp.alias_(projection.copy(), f"_col{i}"))
                changed = True
        return tree.sql(dialect="athena") if changed else sql


def time_columns(sql: str) -> frozenset[str]:
    """The result columns that hold record times: ``start``/``end`` by name, and whatever the query names
    ``start``, ``end``, ``min(start)``, ``max("end")`` ... (as in ``min(start) AS first_seen``)."""
    import sqlglot
    from sqlglot import exp

    from flowwatch.query import presets

    names = set(TIME_FIELDS)
    with presets.nesting_guard():
        tree = sqlglot.parse_one(sql, read="athena")
        if not isinstance(tree, exp.Query):
            return frozenset(names)
        for projection in tree.selects:
            value = projection.this if isinstance(projection, exp.Alias) else projection
            while type(value).__name__ in _SAME_VALUE and isinstance(value.this, exp.Expression):
                value = value.this
            if isinstance(value, exp.Column) and value.name.lower() in TIME_FIELDS and projection.alias_or_name:
                names.add(projection.alias_or_name)
    return frozenset(names)


def _refused(what: str) -> UsageError:
    return UsageError(f"query: refused: {what}; `flowwatch query` runs read-only queries (SELECT or WITH) only",
                      hint="the stack's database, table and partitions are `flowwatch up`'s to create and change")


def _kind(tokens: "list[Any]") -> str:
    """``DROP TABLE``, ``SHOW``, ``INSERT INTO``: the words a statement starts with."""
    words = [t.text.upper() for t in tokens[:2]]
    if len(words) == 2 and words[1] in ("TABLE", "DATABASE", "SCHEMA", "VIEW", "INTO", "OVERWRITE", "TABLES",
                                        "PARTITIONS", "COLUMNS", "FROM", "REPAIR", "EXTERNAL"):
        return f"{words[0]} {words[1]}"
    return words[0] if words else "the statement"


def _parse_error(sql: str, exc: Exception) -> SqlError:
    """sqlglot's first error, at the start of the token it names (sqlglot's column is that token's end)."""
    errors = getattr(exc, "errors", None) or []
    if not errors or not errors[0].get("line"):
        return SqlError(f"query: SQL syntax error: {_first_line(exc)}")
    err = errors[0]
    highlight = str(err.get("highlight") or "")
    position = (int(err["line"]), max(1, int(err["col"]) - max(len(highlight), 1) + 1))
    description = str(err.get("description") or "invalid SQL")
    near = f" near {highlight!r}" if highlight else ""
    return SqlError(f"query: SQL syntax error at line {position[0]}:{position[1]}: {description}{near}",
                    position=position, context=caret_context(sql, position))


def _position(sql: str, offset: int) -> tuple[int, int]:
    """(line, column), 1-based, of a character offset."""
    before = sql[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
