"""The everyday commands answered without typer, pydantic or pandas (quick.py), and the same answers
as the full CLI gives (``--traceback`` sends any command through typer)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autogenv2.quick import COMMANDS, help_text

TOY_PLAN = """root = "runs"
[[steps]]
name = "mc"
code = "toy"
method = "mc"
nblocks = 20
seconds_per_block = 0.0
[[scans]]
id = "j{i}"
vary = { i = [1, 2, 3] }
"""
PROBE = """import runpy, sys, json
sys.argv = ["autogenv2", *json.loads(sys.argv[1])]
try:
    runpy.run_module("autogenv2", run_name="__main__")
except SystemExit as exc:
    heavy = sorted(m for m in ("typer", "pydantic", "pandas", "click", "numpy") if m in sys.modules)
    sys.stderr.write("HEAVY " + json.dumps(heavy) + " CODE " + str(exc.code) + "\\n")
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROBE, json.dumps(list(args))], capture_output=True,
                          text=True, cwd=cwd, timeout=300, env={**os.environ, "COLUMNS": "200"})


def heavy(proc: subprocess.CompletedProcess[str]) -> list[str]:
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("HEAVY ")][-1]
    return json.loads(line.split(" ", 1)[1].rsplit(" CODE ", 1)[0])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("quick")
    (base / "plan.toml").write_text(TOY_PLAN)
    proc = subprocess.run([sys.executable, "-m", "autogenv2", "run", "plan.toml", "--watch", "--interval",
                           "0.2"], capture_output=True, text=True, cwd=base, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return base


@pytest.mark.parametrize("args", [["--help"], ["status", "plan.toml"], ["status", "plan.toml", "--plain"],
                                  ["results", "plan.toml", "-f", "csv"],
                                  ["results", "runs", "--format", "json"]])
def test_everyday_commands_import_no_framework(toy: Path, args: list[str]) -> None:
    proc = cli(*args, cwd=toy)
    assert "CODE 0" in proc.stderr and heavy(proc) == [], proc.stderr


@pytest.mark.parametrize("args", [["status", "plan.toml"], ["status", "plan.toml", "--plain", "--all"],
                                  ["results", "plan.toml", "-f", "csv"],
                                  ["results", "plan.toml", "-f", "json"],
                                  ["results", "plan.toml"], ["status", "missing.toml"],
                                  ["results", "plan.toml", "-f", "xml"]])
def test_quick_and_full_cli_print_the_same(toy: Path, args: list[str]) -> None:
    quick, full = cli(*args, cwd=toy), cli("--traceback", *args, cwd=toy)
    assert "typer" in heavy(full) and "typer" not in heavy(quick)
    assert quick.stdout == full.stdout and quick.stdout.strip()
    assert quick.stderr.split("HEAVY")[0] == full.stderr.split("HEAVY")[0]
    assert ("CODE 0" in quick.stderr) == ("CODE 0" in full.stderr)


def test_unusual_command_lines_go_to_the_full_cli(toy: Path) -> None:
    for args in (["status", "plan.toml", "--help"], ["status", "plan.toml", "--bogus"],
                 ["results", "a", "b"]):
        proc = cli(*args, cwd=toy)
        assert "typer" in heavy(proc), (args, proc.stderr)


def test_quick_help_lists_every_typer_command_with_its_summary() -> None:
    from typer.main import get_command

    from autogenv2.cli import app

    group = get_command(app)
    assert sorted(group.commands) == sorted(COMMANDS)  # type: ignore[attr-defined]
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert command.short_help == COMMANDS[name]
        assert f"  {name} " in help_text() and COMMANDS[name] in help_text()


def test_status_shows_the_95_bound_the_warmup_used_and_reliability(toy: Path) -> None:
    rows = json.loads(cli("results", "plan.toml", "-f", "json", cwd=toy).stdout)
    table = cli("status", "plan.toml", cwd=toy).stdout
    assert "95 % / warm-up" in table
    for row in rows:
        assert isinstance(row["warmup"], int) and isinstance(row["reliable"], bool), row
        line = next(ln for ln in table.splitlines() if f" {row['job']} " in ln)
        assert f"{row['error_95']:.6f} / {row['warmup']}" in line, line
        assert ("(unreliable)" in line) == (not row["reliable"]), line


INSPECT_PROBE = PROBE.replace('("typer", "pydantic", "pandas", "click", "numpy")',
                              '("typer", "click", "pandas", "pydantic", "autogenv2.codes.base", '
                              '"autogenv2.codes.qwalk.writer", "autogenv2.codes.qwalk.conversion", '
                              '"autogenv2.codes.qwalk.optimizers")')
CASES = Path(__file__).parent / "data" / "qwalk" / "cases"


def _with_markers(tmp_path: Path) -> Path:
    """dmc_h2 as the launcher leaves it (no run_meta.json): the exit code comes from its markers."""
    case = tmp_path / "markers"
    shutil.copytree(CASES / "dmc_h2", case)
    (case / "run_meta.json").unlink()
    (case / ".autogenv2").mkdir()
    (case / ".autogenv2" / "t1.started").write_text('{"started_at": 1.0, "pid": 1, "host": "h"}')
    (case / ".autogenv2" / "t1.exit").write_text('{"exit_code": 0, "reason": "", "started_at": 1.0}')
    return case


@pytest.mark.parametrize("args", [["--json"], [], ["--run-id", "qw.dmc", "--json"], ["--exit-code", "0"],
                                  ["markers", "--json"]])
def test_inspect_needs_no_framework_writers_or_pydantic(tmp_path: Path, args: list[str]) -> None:
    """inspect imports neither typer nor pydantic, whether the exit code comes from run_meta.json or from
    the launcher's markers (runners/markers.py)."""
    case = str(CASES / "dmc_h2")
    if args[:1] == ["markers"]:
        case, args = str(_with_markers(tmp_path)), args[1:]
    run = [sys.executable, "-c", INSPECT_PROBE]
    quick = subprocess.run([*run, json.dumps(["inspect", case, *args])], capture_output=True, text=True,
                           cwd=tmp_path, timeout=300, check=False)
    full = subprocess.run([*run, json.dumps(["--traceback", "inspect", case, *args])], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300, check=False)
    assert "CODE 0" in quick.stderr and heavy(quick) == [], quick.stderr
    assert "typer" in heavy(full)
    assert quick.stdout == full.stdout and "dmc" in quick.stdout
    if "markers" in case:
        assert json.loads(quick.stdout)["runs"][0]["exit_code"] == 0
