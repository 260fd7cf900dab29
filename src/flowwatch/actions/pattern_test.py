"""`flowwatch pattern test`: evaluate a CloudWatch Logs filter pattern on lines, offline with
flowwatch's own engine (flowwatch.patterns), or with `--remote` through CloudWatch Logs TestMetricFilter.

Exit 0 when a line matched, 1 when none did, 2 when the pattern is invalid.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from flowwatch.console import plural
from flowwatch.errors import ConfigError

if TYPE_CHECKING:
    from flowwatch.console import Output
    from flowwatch.model import Context

REMOTE_BATCH = 50  # TestMetricFilter accepts at most 50 messages per call
REMOTE_ATTEMPTS = 2  # one retry: a 5xx is shown at once, not after botocore's ~30 s of backoff


def compile_or_fail(pattern_text: str) -> Any:
    """The compiled pattern; ConfigError (exit 2) if it is invalid, before any AWS call."""
    from flowwatch.patterns import PatternError, compile_pattern

    try:
        return compile_pattern(pattern_text)
    except PatternError as exc:
        raise ConfigError(f"invalid filter pattern: {exc}") from None


def read_lines(source: IO[str]) -> list[str]:
    """The non-blank lines of ``source``, each at most the largest log event (CloudWatch's 1 MiB): a longer
    one is a usage error naming it, read in bounded memory (a file of one endless line is never held)."""
    from flowwatch.patterns import MAX_EVENT_LENGTH
    from flowwatch.records import LineTooLong, bounded_lines

    name = getattr(source, "name", None) or "<stdin>"
    try:
        return [line.rstrip("\r\n") for line in bounded_lines(source, limit=MAX_EVENT_LENGTH) if line.strip()]
    except LineTooLong as exc:
        raise ConfigError(f"{name}: line {exc.number} is longer than a log event can be "
                          f"({MAX_EVENT_LENGTH // (1024 * 1024)} MiB)") from None


def match_lines(out: Output, pattern: Any, pattern_text: str, lines: list[str], *, ctx: Context | None = None,
                output: str = "table") -> int:
    """Print the matching lines (with their fields at -v); evaluated by flowwatch's engine, or with a
    Context by CloudWatch Logs TestMetricFilter. Exit code: 0 if any matched, 1 if none. ``output="json"``:
    one JSON object (the pattern, who evaluated it, counts, each matched line with its extracted fields)."""
    if ctx is not None:
        matches = remote_matches(ctx, pattern_text, lines)
    else:
        matches = [(line, pattern.extract(line)) for line in lines]
        matches = [(line, fields) for line, fields in matches if fields is not None]
    where = "CloudWatch Logs TestMetricFilter" if ctx is not None else f"flowwatch's engine ({pattern.kind} pattern)"
    if output == "json":
        out.json({"pattern": pattern_text, "kind": pattern.kind,
                  "engine": "TestMetricFilter" if ctx is not None else "flowwatch",
                  "lines": len(lines), "matched": len(matches),
                  "matches": [{"line": line, "fields": fields or {}} for line, fields in matches]})
    for line, fields in matches if output != "json" else ():
        out.text(line)
        if fields and out.verbosity >= 1:
            out.text("    " + "  ".join(f"{k}={v}" for k, v in fields.items()))
    out.info(f"{len(matches)} of {plural(len(lines), 'line')} matched, evaluated by {where}")
    return 0 if matches else 1


def remote_matches(ctx: Context, pattern_text: str, lines: list[str]) -> list[tuple[str, dict[str, str]]]:
    from flowwatch.errors import aws_errors

    found: list[tuple[str, dict[str, str]]] = []
    for batch in _batches(lines, REMOTE_BATCH):
        with aws_errors("pattern"):
            resp = ctx.aws.client("logs", attempts=REMOTE_ATTEMPTS).test_metric_filter(filterPattern=pattern_text, logEventMessages=batch)
        for match in resp.get("matches", []):
            fields = {k.lstrip("$"): v for k, v in (match.get("extractedValues") or {}).items()}
            found.append((match.get("eventMessage", ""), fields))
    return found


def _batches(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
