"""Every step satisfies the typed contract ``Step[Spec, Seen]``: mypy checks it (steps/__init__.py annotates
each step); here, that a step with a wrong verb really fails mypy, and that no step imports above itself."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flowwatch import steps

SRC = Path(steps.__file__).resolve().parent
FORBIDDEN = ("click", "flowwatch.cli", "flowwatch.local", "flowwatch.query", "flowwatch.engine")


def test_every_step_has_the_same_verbs():
    verbs = ("desired", "discover", "plan", "apply", "plan_destroy", "publish", "found", "status")
    for step in steps.ALL_STEPS:
        assert all(callable(getattr(step, v)) for v in verbs), step.name
    assert len(set(steps.ALL_STEP_NAMES)) == len(steps.ALL_STEPS)


@pytest.mark.parametrize("module", sorted(p.name for p in SRC.glob("*.py")))
def test_steps_import_nothing_above_them(module):
    tree = ast.parse((SRC / module).read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [n for n in names if n.startswith(FORBIDDEN)], module


BAD_STEP = '''
from flowwatch.model import Change, Context
from flowwatch.steps.base import Step
from flowwatch.steps.vpc import VpcSeen, VpcSpec, VpcStep


class Wrong(VpcStep):
    def apply(self, ctx: Context, change: Change, have: VpcSeen | None) -> VpcSeen | None:   # the old verb
        return have


STEP: Step[VpcSpec, VpcSeen] = Wrong()
'''


@pytest.mark.skipif(shutil.which("mypy") is None and not Path(sys.executable).with_name("mypy").exists(),
                    reason="mypy is not installed")
@pytest.mark.slow
def test_a_step_with_a_wrong_verb_fails_mypy(tmp_path):
    bad = tmp_path / "bad_step.py"
    bad.write_text(BAD_STEP)
    result = subprocess.run([sys.executable, "-m", "mypy", str(bad), "--ignore-missing-imports",
                             "--follow-imports=silent", "--no-incremental"], capture_output=True, text=True,
                            env={"MYPYPATH": str(SRC.parents[1]), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1 and "incompatible" in result.stdout.lower(), result.stdout
