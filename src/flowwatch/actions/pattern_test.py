"""`flowwatch pattern test`: evaluate a CloudWatch Logs filter pattern on lines, offline with
flowwatch's own engine (flowwatch.patterns), or with `--remote` through CloudWatch Logs TestMetricFilter.

Exit 0 when a line matched, 1 when none did, 2 when the pattern is invalid.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

from flowwatch.errors import ConfigError
from flowwatch.settings import Settings

REMOTE_BATCH = 50  # TestMetricFilter accepts at most 50 messages per call


def run(settings: Settings, pattern_text: str, source: IO[str], *, remote: bool = False) -> int:
    from flowwatch.console import Output
    from flowwatch.patterns import PatternError, compile_pattern

    out = Output(settings.verbosity, settings.debug)
    try:
        pattern = compile_pattern(pattern_text)
    except PatternError as exc:
        raise ConfigError(f"invalid filter pattern: {exc}") from None
    lines = [line.rstrip("\n") for line in source if line.strip()]
    if remote:
        matches = _remote(settings, pattern_text, lines, out)
    else:
        matches = [(line, pattern.extract(line)) for line in lines]
        matches = [(line, fields) for line, fields in matches if fields is not None]
    for line, fields in matches:
        out.text(line)
        if fields and settings.verbosity >= 1:
            out.text("    " + "  ".join(f"{k}={v}" for k, v in fields.items()))
    where = "CloudWatch Logs TestMetricFilter" if remote else f"flowwatch's engine ({pattern.kind} pattern)"
    out.info(f"{len(matches)} of {len(lines)} line(s) matched, evaluated by {where}")
    return 0 if matches else 1


def _remote(settings: Settings, pattern_text: str, lines: list[str], out: Any) -> list[tuple[str, dict[str, str]]]:
    from flowwatch.context import build_context
    from flowwatch.errors import aws_errors

    ctx = build_context(settings, out=out)
    found: list[tuple[str, dict[str, str]]] = []
    for batch in _batches(lines, REMOTE_BATCH):
        with aws_errors("pattern"):
            resp = ctx.aws.logs.test_metric_filter(filterPattern=pattern_text, logEventMessages=batch)
        for match in resp.get("matches", []):
            fields = {k.lstrip("$"): v for k, v in (match.get("extractedValues") or {}).items()}
            found.append((match.get("eventMessage", ""), fields))
    return found


def _batches(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
