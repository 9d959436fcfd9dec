"""The installed ``autogenv2`` console script answers usage mistakes in a few lines, never a traceback.

Runs the script pip wrote next to the interpreter (what a user types), not ``python -m``: a missing
dependency of the error path (click, once typer stopped pulling it in) shows only there.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "autogenv2"
pytestmark = pytest.mark.skipif(not SCRIPT.exists(),
                                reason=f"no console script at {SCRIPT} (pip install -e .)")

CASES = [  # arguments, exit code, a phrase the output must hold
    ([], 2, "usage: autogenv2 COMMAND"),
    (["bogus"], 2, "No such command 'bogus'"),
    (["run"], 2, "Missing argument 'PLAN'"),
    (["status"], 2, "Missing argument 'TARGET'"),
    (["run", "plan.toml", "--interval", "abc"], 2, "Invalid value for '--interval'"),
    (["run", "plan.toml", "--no-such-flag"], 2, "No such option"),
    (["--version"], 0, "autogenv2 0.1.0"),
    (["run", "does-not-exist.toml"], 1, "does-not-exist.toml"),
]


@pytest.mark.parametrize(("args", "code", "phrase"), CASES, ids=[" ".join(c[0]) or "(none)" for c in CASES])
def test_usage_mistakes_give_a_few_lines_and_a_code(args: list[str], code: int, phrase: str,
                                                   tmp_path: Path) -> None:
    proc = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "COLUMNS": "120"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == code, out
    assert "Traceback" not in out and phrase in out, out
    assert len(out.strip().splitlines()) <= 5, out


def test_help_lists_every_command() -> None:
    proc = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "120"})
    assert proc.returncode == 0, proc.stderr
    for command in ("run", "status", "results", "cancel", "report", "inspect"):
        assert f" {command} " in proc.stdout, proc.stdout
