"""Errors flowwatch expects, each with the exit code the CLI returns for it.

Raised early, caught once in ``cli.main``: the user sees one line (plus a dim hint), no traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


#: How much of a user's or AWS's value an error line shows (the rest is counted, not printed).
SHOWN_CHARS = 80


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` for an error line, cut to ``limit`` characters: a value can be a whole file."""
    text = repr(value) if len(str(value)) <= 4 * limit else repr(str(value)[:4 * limit])
    if len(text) <= limit:
        return text
    return f"{text[:limit - 1]}… ({len(str(value))} characters)"


class FlowwatchError(Exception):
    """Base class: a message a user can act on, an exit code and an optional hint."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ConfigError(FlowwatchError):
    """Bad config or bad usage, found before any AWS call (exit 2)."""

    exit_code = 2


class UsageError(ConfigError):
    """Bad command-line input (exit 2)."""


class AwsError(FlowwatchError):
    """An AWS call failed (exit 1)."""

    HINTS = {
        "AccessDenied": "the caller lacks a permission; docs/IAM.md lists the policy flowwatch needs",
        "AccessDeniedException": "the caller lacks a permission; docs/IAM.md lists the policy flowwatch needs",
        "UnauthorizedOperation": "the caller lacks a permission; docs/IAM.md lists the policy flowwatch needs",
        "UnrecognizedClientException": "the credentials are not valid for this endpoint",
        "InvalidClientTokenId": "the credentials are not valid for this endpoint",
        "ExpiredToken": "refresh your credentials (aws sso login, or new session keys)",
        "ExpiredTokenException": "refresh your credentials (aws sso login, or new session keys)",
        "VpcLimitExceeded": "the region's VPC quota is used up; delete an unused VPC or ask for more",
        "DependencyViolation": "something outside the stack still uses this resource; remove it and run down again",
        "BucketAlreadyExists": "bucket names are global: set names.bucket to a name of your own",
    }

    def __init__(self, message: str, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message, hint)
        self.code = code

    @classmethod
    def from_client_error(cls, err: Any, *, step: str, operation: str | None = None) -> "AwsError":
        error = getattr(err, "response", {}).get("Error", {})
        code = error.get("Code", "Unknown")
        message = _one_line(error.get("Message", str(err)), getattr(err, "response", {}))
        op = operation or getattr(err, "operation_name", "call")
        return cls(f"{step}: {op} failed: {code}: {message}", hint=cls.HINTS.get(code), code=code)


def _one_line(message: str, response: Any) -> str:
    """An error message fit for one line: an endpoint's HTML error page (a 5xx of a server, not of
    AWS's API) becomes its HTTP status."""
    text = str(message).strip()
    if text[:200].lower().startswith(("<!doctype html", "<html")):
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode") if isinstance(response, dict) else None
        return f"the endpoint answered HTTP {status or 'error'} without an AWS error"
    return text


class SqlError(FlowwatchError):
    """The SQL does not parse, or the engine could not run it (exit 1, as a FAILED Athena query).

    ``position`` is the (line, column) the engine named, 1-based, in the SQL it ran; ``context`` the
    lines to show under the error (that line of the SQL and a caret under the column)."""

    def __init__(self, message: str, hint: str | None = None, *, position: tuple[int, int] | None = None,
                 context: tuple[str, ...] = ()) -> None:
        super().__init__(message, hint)
        self.position = position
        self.context = context

    @classmethod
    def from_duckdb(cls, text: str, sql: str, hint: str | None = None) -> "SqlError":
        """DuckDB's error ("Binder Error: ...", then "LINE 2: <its part of the line>" over a caret):
        one line with the position in ``sql`` (the DuckDB SQL run), and that line under it."""
        import re

        lines = [line for line in text.splitlines() if line.strip()]
        at = next((i for i, line in enumerate(lines) if re.match(r"LINE \d+: ", line)), None)
        message = " ".join(line.strip() for line in (lines if at is None else lines[:at])[:2]) or "DuckDB error"
        position = None
        if at is not None and at + 1 < len(lines) and "^" in lines[at + 1]:
            label = re.match(r"LINE (\d+): ", lines[at])
            assert label is not None
            shown = lines[at][label.end():]
            caret = lines[at + 1].index("^") - label.end()
            number = int(label.group(1))
            source = sql.splitlines()[number - 1] if 0 < number <= len(sql.splitlines()) else ""
            piece = shown.strip(".")            # DuckDB cuts a long line to a window marked with "..."
            found = source.find(piece) if piece else -1
            if found >= 0:
                position = (number, found + caret - (len(shown) - len(shown.lstrip("."))) + 1)
        where = f" at line {position[0]}:{position[1]}" if position else ""
        return cls(f"query: SQL error{where} (DuckDB): {message}", hint=hint, position=position,
                   context=caret_context(sql, position))


#: How much of a long SQL line the caret context shows around the column.
CONTEXT_CHARS = 60


def caret_context(sql: str, position: tuple[int, int] | None) -> tuple[str, ...]:
    """The line of ``sql`` at ``position`` (cut to about CONTEXT_CHARS around the column) and a caret under it."""
    if position is None:
        return ()
    line, column = position
    lines = sql.splitlines()
    if not 1 <= line <= len(lines):
        return ()
    text = lines[line - 1].expandtabs(1)
    start = max(0, min(column - 1 - CONTEXT_CHARS // 2, len(text) - CONTEXT_CHARS))
    shown = text[start:start + CONTEXT_CHARS]
    head, tail = ("…" if start else ""), ("…" if start + CONTEXT_CHARS < len(text) else "")
    caret = max(0, min(column - 1 - start, len(shown)))
    return (f"{head}{shown}{tail}", " " * (caret + len(head)) + "^")


class AmbiguousStateError(FlowwatchError):
    """More than one resource carries the tags that should name exactly one (exit 1)."""

    def __init__(self, step: str, ids: list[str]) -> None:
        super().__init__(
            f"{step}: found {len(ids)} resources tagged for this stack: {', '.join(ids)}",
            hint="`flowwatch status` lists them; `flowwatch up --prune` (or `flowwatch down`) removes the extra ones",
        )


class DriftError(FlowwatchError):
    """A resource exists but differs in a way that cannot be changed in place (exit 1)."""


class OwnershipError(FlowwatchError):
    """A resource with the stack's name exists but is not the stack's own (exit 1)."""


class TimeoutError_(FlowwatchError):
    """Waiting for AWS took longer than allowed (exit 1)."""


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError (or anything shaped like one), else None."""
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


@contextlib.contextmanager
def aws_errors(step: str) -> Iterator[None]:
    """Turn botocore failures into one actionable FlowwatchError line naming the step."""
    try:
        yield
    except FlowwatchError:
        raise
    except Exception as exc:
        from botocore.exceptions import (ClientError, EndpointConnectionError, NoCredentialsError,
                                         NoRegionError, WaiterError)

        if isinstance(exc, ClientError):
            raise AwsError.from_client_error(exc, step=step) from exc
        if isinstance(exc, NoCredentialsError):
            raise FlowwatchError(f"{step}: no AWS credentials found",
                                 hint="set AWS_PROFILE or --profile, run `aws configure`, or use --local") from exc
        if isinstance(exc, NoRegionError):
            raise FlowwatchError(f"{step}: no region", hint="set region: in the config or --region") from exc
        if isinstance(exc, EndpointConnectionError):
            raise FlowwatchError(f"{step}: cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')}",
                                 hint="check --endpoint-url / the network (flowwatch local status)") from exc
        if isinstance(exc, WaiterError):
            raise AwsError(f"{step}: gave up waiting: {exc}") from exc
        raise
