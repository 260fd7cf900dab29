"""Output: the only thing in flowwatch that prints (rich).

Progress, plans and errors go to stderr; data (query rows, status JSON) goes to stdout so it pipes.
Methods check verbosity themselves; command code never does.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

PIPE_WIDTH = 200
EMAIL_WIDTH = 100  # an e-mail reads like one: narrow
SYMBOLS = {"create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red"),
           "ok": ("✓", "green"), "fail": ("✗", "red"), "skip": ("·", "dim")}


def plural(count: int, unit: str) -> str:
    """``plural(1, "record")`` -> "1 record", ``plural(2, "record")`` -> "2 records"."""
    return f"{count} {unit}{'' if count == 1 else 's'}"


class Output:
    def __init__(self, verbosity: int = 0, debug: bool = False, *, stderr: Any = None, stdout: Any = None,
                 color: bool | None = None, wide: bool = False) -> None:
        from rich.console import Console

        self.verbosity = verbosity
        self.debug = debug
        self.err = Console(file=stderr or sys.stderr, stderr=stderr is None, highlight=False,
                           no_color=color is False, force_terminal=color or None, soft_wrap=True)
        self.out = Console(file=stdout or sys.stdout, highlight=False, no_color=color is False,
                           force_terminal=color or None, soft_wrap=True)
        if self.err.is_terminal:
            # progress on a terminal is wrapped by rich at the terminal's width, between words (soft wrap
            # would leave it to the terminal, which cuts ids and words at the last column)
            self.err.soft_wrap = False
        if not self.out.is_terminal:
            # piped or captured: rich would assume 80 columns and fold every table row; a table is only as
            # wide as its content anyway
            self.out.width = PIPE_WIDTH
        self.wide = wide            # --wide: every column in full (as when stdout is not a terminal)
        self._stdout = stdout or sys.stdout

    @property
    def full_width(self) -> bool:
        """Data shown in full (--wide, or stdout is not a terminal); else tables fit the terminal's width."""
        return self.wide or not self.out.is_terminal

    # ---- progress (stderr) ----
    def info(self, message: str) -> None:
        self.err.print(message)

    def detail(self, message: str) -> None:
        if self.verbosity >= 1:
            self.err.print(f"[dim]{message}[/dim]")

    def debug_line(self, message: str) -> None:
        if self.verbosity >= 2 or self.debug:
            self.err.print(f"[dim]debug: {message}[/dim]")

    def call(self, service: str, operation: str, ms: float, request_id: str | None = None,
             error: str | None = None) -> None:
        """One AWS call made (``-v``): service, operation, duration; ``-vv`` adds the request id."""
        if self.verbosity < 1:
            return
        line = f"aws {service} {operation} {ms:.0f} ms"
        if error:
            line += f" {error}"
        if self.verbosity >= 2:
            line += f" request-id {request_id or '-'}"
        self.err.print(f"[dim]{_escape(line)}[/dim]")

    def warn(self, message: str) -> None:
        self.err.print(f"[yellow]warning:[/yellow] {_escape(message)}")

    def error(self, message: str, hint: str | None = None, context: Sequence[str] = ()) -> None:
        """One line; ``context`` (e.g. a SQL line and a caret under the error) indented below it."""
        self.err.print(f"[red]error:[/red] {_escape(message)}", markup=True, highlight=False)
        for line in context:
            self.err.print(f"  {_escape(line)}", markup=True, highlight=False)
        if hint:
            self.err.print(f"[dim]hint: {_escape(hint)}[/dim]")

    def heading(self, message: str) -> None:
        self.err.print(f"[bold]{message}[/bold]")

    @contextlib.contextmanager
    def working(self, message: str) -> Iterator[None]:
        """A spinner while something runs (only on a terminal)."""
        if self.err.is_terminal:
            with self.err.status(message):
                yield
        else:
            yield

    def step(self, name: str, changes: Sequence[Any], found: str | None, *, dry_run: bool = False,
             failed: str | None = None) -> None:
        if failed is not None:
            sym, color = SYMBOLS["fail"]
            self.err.print(f"  [{color}]{sym}[/{color}] {name:<14} [red]failed[/red]      {_escape(failed)}")
            return
        if not changes:
            sym, color = SYMBOLS["ok"]
            what = safe(found) if found else "nothing to do"
            self.err.print(f"  [{color}]{sym}[/{color}] {name:<14} no change   [dim]{what}[/dim]")
            return
        for change in changes:
            # the verb is the action, the target a noun ("attachment of igw-1 to vpc-2"): "would delete attachment ..."
            sym, color = SYMBOLS[change.action]
            verb = f"would {change.action}" if dry_run else change.action
            self.err.print(f"  [{color}]{sym}[/{color}] {name:<14} {verb:<11} {safe(change.target)}"
                           f" [dim]({safe(change.reason)})[/dim]")

    def summary(self, steps_changed: int, changes: int, unchanged: int, errors: int = 0, *,
                dry_run: bool = False) -> None:
        """Counted in steps, with the changes of the changed ones: "Changed: 3 steps (7 changes)  No change: 9 steps"."""
        label = "Would change" if dry_run else "Changed"
        self.err.print(f"{label}: {_count(steps_changed, 'step')} ({_count(changes, 'change')})  "
                       f"No change: {_count(unchanged, 'step')}  Errors: {errors}")

    # ---- data (stdout) ----
    def data(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table",
             title: str | None = None, time_columns: Sequence[str] | None = None) -> None:
        if fmt == "json":
            self.json([dict(zip(columns, row)) for row in rows])
        elif fmt == "csv":
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(["" if v is None else v for v in row] for row in rows)
            self._stdout.write(self._plain(buf.getvalue()))
            self._stdout.flush()
        else:
            self.table(columns, rows, title=title, time_columns=time_columns)

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None,
              time_columns: Sequence[str] | None = None) -> None:
        """Rows as a rich table on stdout. ``full_width``: every column in full. Otherwise the table
        fits the terminal: free-text columns are cut (at a word, with an ellipsis), then the least important
        columns (the rightmost) are dropped; identifiers, addresses, numbers and times are never cut or folded.
        ``time_columns`` (default TIME_COLUMNS): the columns whose epoch seconds show as UTC times."""
        from rich.table import Table

        layout = table_layout(columns, rows, None if self.full_width else self.out.width,
                              TIME_COLUMNS if time_columns is None else time_columns)
        table = Table(title=title, show_lines=False, header_style="bold")
        for col in layout.columns:
            table.add_column(col.name, no_wrap=True, width=col.width, overflow="ellipsis",
                             justify="right" if col.numeric else "left")
        for cells in layout.rows:
            table.add_row(*[self._cell(col.name, text) for col, text in zip(layout.columns, cells)])
        if self.full_width:
            width = self.out.width
            self.out.width = max(width, layout.total)     # as wide as its content, never squeezed
            try:
                self.out.print(table, crop=False)
            finally:
                self.out.width = width
        else:
            self.out.print(table)
        if layout.hidden:
            self.err.print(f"[dim]columns not shown at {self.out.width} columns: {', '.join(layout.hidden)}"
                           " (--wide shows every column)[/dim]")

    @staticmethod
    def _cell(column: Any, value: str | None) -> Any:
        from rich.text import Text

        if value is None:
            return Text("-", style="dim")
        if column == "action" and value == "REJECT":
            return Text(value, style="bold red")
        return Text(value)

    def json(self, value: Any) -> None:
        self._stdout.write(json.dumps(value, indent=2, default=str) + "\n")
        self._stdout.flush()

    def json_line(self, value: Any) -> None:
        """One JSON object on one line of stdout (a stream of records: JSON Lines)."""
        self._stdout.write(json.dumps(value, default=str) + "\n")
        self._stdout.flush()

    def csv_row(self, values: Sequence[Any]) -> None:
        """One CSV row on stdout (a header, or a record of a stream); None as an empty field."""
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(["" if v is None else v for v in values])
        self._stdout.write(self._plain(buf.getvalue()))
        self._stdout.flush()

    def text(self, line: str) -> None:
        """A plain data line on stdout (no markup)."""
        self._stdout.write(self._plain(line) + "\n")
        self._stdout.flush()

    def _plain(self, text: str) -> str:
        """Data for stdout: as is into a pipe or file (it is data); on a terminal, control characters made
        visible (a terminal would act on them)."""
        return safe(text, markup=False, keep_newlines=True) if self.out.is_terminal else text

    def untrusted(self, text: str) -> None:
        """A line of text from outside (a log event that is not a record): shown literally on stdout."""
        from rich.text import Text

        self.out.print(Text(safe(text, markup=False)))

    def raw(self, chunks: Iterable[bytes]) -> None:
        """Data already encoded as UTF-8 (a query engine's JSON/CSV export), copied to stdout as it comes."""
        self._stdout.flush()
        # on a terminal, decoded so that control characters in the results are shown, not obeyed
        sink = None if self.out.is_terminal else getattr(self._stdout, "buffer", None)
        if sink is not None:
            for chunk in chunks:
                sink.write(chunk)
            sink.flush()
            return
        decoder = codecs.getincrementaldecoder("utf-8")()
        for chunk in chunks:
            self._stdout.write(self._plain(decoder.decode(chunk)))
        self._stdout.write(decoder.decode(b"", final=True))
        self._stdout.flush()

    def rich(self, renderable: Any) -> None:
        """A rich renderable on stdout (tables, panels)."""
        self.out.print(renderable)

    def notification(self, message: dict[str, Any]) -> None:
        """One message of the local inbox (flowwatch.local), shown as the e-mail AWS would send."""
        from datetime import datetime, timezone

        from rich.panel import Panel
        from rich.text import Text

        when = datetime.fromtimestamp(message.get("time", 0), tz=timezone.utc).strftime("%a, %d %b %Y %H:%M:%S UTC")
        to = ", ".join(message.get("recipients") or ()) or "(no e-mail subscriber: AWS would e-mail nobody)"
        head = Text.assemble(("From:    ", "dim"), "AWS Notifications <no-reply@sns.amazonaws.com>\n",
                             ("To:      ", "dim"), safe(to, markup=False) + "\n", ("Date:    ", "dim"), when + "\n",
                             ("Topic:   ", "dim"), safe(message.get("topic_arn"), markup=False) + "\n",
                             ("Subject: ", "dim"), (safe(message.get("subject") or "(none)", markup=False), "bold"),
                             "\n\n", safe(message.get("body", ""), markup=False, keep_newlines=True))
        color = "red" if str(message.get("subject", "")).startswith("ALARM") else "green"
        self.out.print(Panel(head, border_style=color, title="e-mail", title_align="left",
                             width=min(EMAIL_WIDTH, self.out.width)), soft_wrap=False)

    @contextlib.contextmanager
    def live(self) -> Iterator[Any]:
        """A one-line live display on stderr; yields ``update(text)``. On a terminal the line is
        redrawn in place; elsewhere a line is printed only when the text changes."""
        if self.err.is_terminal:
            from rich.live import Live
            from rich.text import Text

            with Live(Text(""), console=self.err, refresh_per_second=4, transient=False) as live:
                yield lambda text: live.update(Text.from_markup(text))
        else:
            last: list[str] = []

            def update(text: str) -> None:
                if not last or last[0] != text:
                    last[:] = [text]
                    self.err.print(text)

            yield update

    def crash(self, exc: BaseException) -> None:
        if self.debug:
            self.err.print_exception(show_locals=False)
        else:
            self.error(f"{type(exc).__name__}: {exc}", hint="run again with --debug for the traceback")


# ---- table layout (pure: what ``Output.table`` shows at a given width) ----
#: values that are never cut or folded: resource ids and ARNs, IP addresses and CIDRs, numbers, times
_ID = re.compile(r"^(?:(?:vpc|subnet|igw|acl|eni|fl|sg|i|rtb|ami|vol|nat|pl|eigw|tgw)-[0-9a-f]{4,}"
                 r"|arn:\S+|\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?(?::\d+)?|[0-9a-fA-F:]*::?[0-9a-fA-F:.]+(?:/\d+)?"
                 r"|-?\d+(?:\.\d+)?|\d{4}-\d\d-\d\d(?:[ T]\d\d:\d\d(?::\d\d)?)?)$")
_WORD_ID = re.compile(r"^(?:[a-z]+-[0-9a-f]{4,}|arn:.*|[\d.:/]+\d)$")
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
TIME_COLUMNS = ("start", "end")      # epoch seconds in a flow-log record: shown as UTC times in tables
#: dropped first when a table does not fit (then the rightmost column): the record's less telling fields
LOW_PRIORITY = ("interface_id", "account_id", "version", "log_status", "date", "dt", "end", "srcport")
TEXT_MIN = 12                        # a free-text column is cut down to no fewer characters than this
ELLIPSIS = "…"


@dataclass(frozen=True)
class TableColumn:
    name: str
    width: int
    numeric: bool = False


@dataclass(frozen=True)
class TableLayout:
    columns: tuple[TableColumn, ...]
    rows: tuple[tuple[str | None, ...], ...]     # cells as text (None: no value), already cut to width
    hidden: tuple[str, ...] = ()                # columns dropped to fit the width
    total: int = 0                               # the table's width in characters, borders included


def table_width(widths: Sequence[int]) -> int:
    """The width of a rich table (default box, padding 1) with these column widths: borders and padding."""
    return sum(widths) + 3 * len(widths) + 1


def cell_text(column: str, value: Any, time_columns: Sequence[str] = TIME_COLUMNS) -> str | None:
    """A value as a table shows it: epoch seconds in ``time_columns`` as ``YYYY-MM-DD HH:MM:SS`` (UTC), one line."""
    if value is None:
        return None
    if column in time_columns and not isinstance(value, bool):
        epoch = value if isinstance(value, (int, float)) else int(value) if str(value).isdigit() else None
        if epoch is not None and 10**8 <= epoch < 10**11:
            from datetime import datetime, timezone

            return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    text = " ".join(str(value).split()) if "\n" in str(value) else str(value)
    return safe(text, markup=False)


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells: whole if it fits, else cut at a word (so an id in it stays whole)
    with an ellipsis; cut mid-word only when no word boundary is in the second half."""
    from rich.cells import cell_len, set_cell_size

    if cell_len(text) <= width:
        return text
    room = width - 1
    head = set_cell_size(text, room)
    start = head.rfind(" ") + 1
    word = text[start:].split(" ", 1)[0].strip(",;:()")
    if 0 < start and _WORD_ID.match(word) and len(word) > len(head) - start:   # never half an id
        head = head[:start]
    return head.rstrip(" ,;:(") + ELLIPSIS


def table_layout(columns: Sequence[Any], rows: Sequence[Sequence[Any]], width: int | None,
                 time_columns: Sequence[str] = TIME_COLUMNS) -> TableLayout:
    """Which columns, how wide, with which cell text, for a table at most ``width`` characters wide (None:
    every column in full). A column whose every value is an identifier, address, number or time keeps its
    full width or is dropped; the other (free-text) columns are cut first, down to TEXT_MIN; then columns are
    dropped: the LOW_PRIORITY ones, then the rightmost (the first column stays)."""
    from rich.cells import cell_len

    names = [str(c) for c in columns]
    texts = [[cell_text(n, v, time_columns) for n, v in zip(names, row)] for row in rows]
    values: list[list[str]] = [[v for r in texts if i < len(r) and (v := r[i]) is not None]
                               for i in range(len(names))]
    natural = [max([cell_len(n), 1, *(cell_len(v) for v in vals)]) for n, vals in zip(names, values)]
    fixed = [all(_ID.match(v) for v in vals) for vals in values]
    numeric = [bool(vals) and all(_NUMBER.match(v) for v in vals) for vals in values]
    keep = list(range(len(names)))
    widths = dict(enumerate(natural))
    if width is not None:
        while True:
            excess = table_width([natural[i] for i in keep]) - width
            floor = {i: natural[i] if fixed[i] else max(min(natural[i], max(TEXT_MIN, cell_len(names[i]))),
                                                        *(_leading_id(v) for v in values[i])) for i in keep}
            if excess <= sum(natural[i] - floor[i] for i in keep) or len(keep) == 1:
                widths = _shrink({i: natural[i] for i in keep}, floor, excess)
                break
            droppable = [i for i in keep if names[i] in LOW_PRIORITY]
            keep.remove(min(droppable, key=lambda i: LOW_PRIORITY.index(names[i])) if droppable else keep[-1])
    shown = tuple(TableColumn(names[i], widths[i], numeric[i]) for i in keep)
    cells = tuple(tuple(_cut_cell(r, i, widths[i]) for i in keep) for r in texts)
    hidden = tuple(names[i] for i in range(len(names)) if i not in keep)
    return TableLayout(shown, cells, hidden, table_width([c.width for c in shown]))


def _cut_cell(row: Sequence[str | None], i: int, width: int) -> str | None:
    value = row[i] if i < len(row) else None
    return None if value is None else cut(value, width)


def _leading_id(text: str) -> int:
    """The width a cell needs so that the id it starts with stays whole ("vpc-0a1b... (10.0.0.0/24)"): 0 if none."""
    word = text.split(" ", 1)[0].strip(",;:()")
    if not _WORD_ID.match(word):
        return 0
    return len(word) + (1 if len(text) > len(word) else 0)


def _shrink(widths: dict[int, int], floor: dict[int, int], excess: int) -> dict[int, int]:
    """Take ``excess`` characters off the free-text columns, the rightmost first, none below its floor."""
    widths = dict(widths)
    for i in sorted(widths, reverse=True):
        take = min(excess, widths[i] - floor[i])
        if take > 0:
            widths[i] -= take
            excess -= take
    return widths


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}{'' if n == 1 else 's'}"


#: Characters a terminal acts on instead of showing: C0 controls (ESC starts CSI and OSC 8 links, BEL ends an
#: OSC), DEL, C1 controls (0x9b is a one-byte CSI), and the Unicode format characters that reorder or hide text
#: (bidi overrides and isolates, zero-width ones). Text from AWS or a file shows each as a visible escape.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: Any, *, markup: bool = True, keep_newlines: bool = False) -> str:
    """Untrusted text (log events, AWS error messages, names and tags read back, query results, lines a user
    pipes in) as it may reach the terminal: every control or hiding character as a visible escape (``\\x1b``),
    and, with ``markup`` (text that goes into a rich markup string), ``[`` escaped so that ``[link=...]`` or
    ``[bold]`` is shown, never obeyed. ``keep_newlines``: a multi-line value stays multi-line."""
    value = str(text)
    if keep_newlines:
        value = "\n".join(_CONTROL.sub(_visible, line) for line in value.split("\n"))
    else:
        value = _CONTROL.sub(_visible, value)
    if markup:
        from rich.markup import escape

        value = escape(value)
    return value


def _escape(text: str) -> str:
    """Messages carry user and AWS text (filter patterns, policies, AWS's own messages): shown, never obeyed."""
    return safe(text)
