"""Run the real entry point (flowwatch.cli.main) in-process: exit code, stdout, stderr.

AWS calls go where ``main(session_factory=...)`` says: pass ``session_factory`` to one run, or
``use_session(monkeypatch, session)`` for every run of a test.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

_session_factory: Callable[[str | None, str], Any] | None = None   # set for one test by use_session


@dataclass
class Result:
    code: int
    out: str
    err: str


def use_session(monkeypatch: pytest.MonkeyPatch, session: Any) -> None:
    """Every following ``run_cli`` of this test makes its AWS calls on ``session`` (whatever profile/region)."""
    monkeypatch.setattr(sys.modules[__name__], "_session_factory", lambda profile, region: session)


def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str,
            stdin: str | None = None, session_factory: Callable[[str | None, str], Any] | None = None) -> Result:
    from flowwatch.cli import main

    monkeypatch.setattr(sys, "argv", ["flowwatch", *args])
    if stdin is not None:
        import io

        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(session_factory=session_factory or _session_factory)
    captured = capsys.readouterr()
    code = exc.value.code
    return Result(code if isinstance(code, int) else (0 if code is None else 1), captured.out, captured.err)
