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
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

PIPE_WIDTH = 200
EMAIL_WIDTH = 100  # an e-mail reads like one: narrow
SYMBOLS = {"create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red"),
           "ok": ("✓", "green"), "fail": ("✗", "red"), "skip": ("·", "dim")}


class Output:
    def __init__(self, verbosity: int = 0, debug: bool = False, *, stderr: Any = None, stdout: Any = None,
                 color: bool | None = None) -> None:
        from rich.console import Console

        self.verbosity = verbosity
        self.debug = debug
        self.err = Console(file=stderr or sys.stderr, stderr=stderr is None, highlight=False,
                           no_color=color is False, force_terminal=color or None, soft_wrap=True)
        self.out = Console(file=stdout or sys.stdout, highlight=False, no_color=color is False,
                           force_terminal=color or None, soft_wrap=True)
        if not self.out.is_terminal:
            # piped or captured: rich would assume 80 columns and fold every table row; a table is only as
            # wide as its content anyway
            self.out.width = PIPE_WIDTH
        self._stdout = stdout or sys.stdout

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

    def error(self, message: str, hint: str | None = None) -> None:
        self.err.print(f"[red]error:[/red] {_escape(message)}", markup=True, highlight=False)
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
            what = found or "nothing to do"
            self.err.print(f"  [{color}]{sym}[/{color}] {name:<14} no change   [dim]{what}[/dim]")
            return
        for change in changes:
            # the verb is the action, the target a noun ("attachment of igw-1 to vpc-2"): "would delete attachment ..."
            sym, color = SYMBOLS[change.action]
            verb = f"would {change.action}" if dry_run else change.action
            self.err.print(f"  [{color}]{sym}[/{color}] {name:<14} {verb:<11} {change.target}"
                           f" [dim]({change.reason})[/dim]")

    def summary(self, steps_changed: int, changes: int, unchanged: int, errors: int = 0, *,
                dry_run: bool = False) -> None:
        """Counted in steps, with the changes of the changed ones: "Changed: 3 steps (7 changes)  No change: 9 steps"."""
        label = "Would change" if dry_run else "Changed"
        self.err.print(f"{label}: {_count(steps_changed, 'step')} ({_count(changes, 'change')})  "
                       f"No change: {_count(unchanged, 'step')}  Errors: {errors}")

    # ---- data (stdout) ----
    def data(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table",
             title: str | None = None) -> None:
        if fmt == "json":
            self.json([dict(zip(columns, row)) for row in rows])
        elif fmt == "csv":
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(["" if v is None else v for v in row] for row in rows)
            self._stdout.write(buf.getvalue())
            self._stdout.flush()
        else:
            from rich.table import Table

            table = Table(title=title, show_lines=False, header_style="bold")
            for col in columns:
                table.add_column(str(col), overflow="fold")
            for row in rows:
                table.add_row(*[self._cell(col, v) for col, v in zip(columns, row)])
            self.out.print(table)

    @staticmethod
    def _cell(column: Any, value: Any) -> str:
        if value is None:
            return "[dim]-[/dim]"
        text = str(value).replace("[", r"\[")
        if column == "action" and text == "REJECT":
            return "[bold red]REJECT[/bold red]"
        return text

    def json(self, value: Any) -> None:
        self._stdout.write(json.dumps(value, indent=2, default=str) + "\n")
        self._stdout.flush()

    def text(self, line: str) -> None:
        """A plain data line on stdout (no markup)."""
        self._stdout.write(line + "\n")
        self._stdout.flush()

    def raw(self, chunks: Iterable[bytes]) -> None:
        """Data already encoded as UTF-8 (a query engine's JSON/CSV export), copied to stdout as it comes."""
        self._stdout.flush()
        sink = getattr(self._stdout, "buffer", None)
        if sink is not None:
            for chunk in chunks:
                sink.write(chunk)
            sink.flush()
            return
        decoder = codecs.getincrementaldecoder("utf-8")()
        for chunk in chunks:
            self._stdout.write(decoder.decode(chunk))
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
                             ("To:      ", "dim"), to + "\n", ("Date:    ", "dim"), when + "\n",
                             ("Topic:   ", "dim"), str(message.get("topic_arn")) + "\n", ("Subject: ", "dim"),
                             (str(message.get("subject") or "(none)"), "bold"), "\n\n", str(message.get("body", "")))
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


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}{'' if n == 1 else 's'}"


def _escape(text: str) -> str:
    """Messages carry user and AWS text (filter patterns, policies): never read them as rich markup."""
    from rich.markup import escape

    return escape(str(text))
