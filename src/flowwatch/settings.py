"""Global options as given on the command line or in FLOWWATCH_* variables (no AWS, no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    config_path: str | None = None
    config_explicit: bool = False
    stack: str | None = None
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    local: bool = False
    output: str = "table"
    wide: bool = False          # tables: every column, nothing cut (--wide, FLOWWATCH_WIDE)
    verbosity: int = 0
    debug: bool = False


def check_endpoint_url(url: str, source: str = "--endpoint-url") -> str:
    """``url`` if it is an endpoint every AWS client can be pointed at: http or https, a host, an optional
    port, no credentials, no spaces or control characters; else UsageError (exit 2) naming ``source``."""
    from urllib.parse import urlsplit

    from flowwatch.errors import UsageError, shown

    allowed = "allowed: http:// or https://, a host and an optional port (e.g. http://127.0.0.1:4599)"
    bad = next((c for c in url if c.isspace() or ord(c) < 32 or 127 <= ord(c) < 160), None)
    if bad is not None:
        raise UsageError(f"{source}: {shown(url)} contains {'a space' if bad == ' ' else f'character {ord(bad):#04x}'}"
                         f"; {allowed}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"{source}: {shown(url)} is not a URL ({exc}); {allowed}") from None
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"{source}: {shown(url)} is not an http or https URL; {allowed}")
    if parts.username is not None or parts.password is not None:
        raise UsageError(f"{source}: the URL carries credentials (user:password@); give them as AWS credentials "
                         f"instead; {allowed}")
    if not parts.hostname:
        raise UsageError(f"{source}: {shown(url)} names no host; {allowed}")
    if port == 0:
        raise UsageError(f"{source}: {shown(url)}: port 0; {allowed} (port 1-65535)")
    return url
