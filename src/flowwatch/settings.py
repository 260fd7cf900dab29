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
    verbosity: int = 0
    debug: bool = False
    wide: bool = False          # --wide: tables with every column in full (wt13-opts adds the option)
