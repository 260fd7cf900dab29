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
