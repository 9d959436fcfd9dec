"""One ``autogenv2 run`` pass parses the plan once, locks the root once and validates each profile and
step once; ``cancel`` locks through the same path and a busy root is one clear line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

from autogenv2.errors import EXIT_ERROR, EXIT_OK, EXIT_RUNNING
from autogenv2.lock import LOCK_FILE

PLAN = """root = "runs"
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

PROBE = """import collections, json, sys
import autogenv2.plan as plan, autogenv2.profiles as profiles
from autogenv2 import lock
from autogenv2.__main__ import main

seen = collections.Counter()
init, check, name = profiles.MachineProfile.__init__, plan.Step.check, plan.check_name

def counted_init(self, *args, **kwargs):
    seen["profiles"] += 1
    init(self, *args, **kwargs)

def counted_check(self, where):
    seen["step_checks"] += 1
    return check(self, where)

def counted_name(value, what):
    seen["step_models"] += what == "step name"
    return name(value, what)

profiles.MachineProfile.__init__, plan.Step.check, plan.check_name = counted_init, counted_check, counted_name
try:
    code = main(sys.argv[1:])
finally:
    sys.stderr.write("COUNTS " + json.dumps({**lock.COUNTS, **seen}) + "\\n")
sys.exit(code)
"""


def run(*args: str, cwd: Path) -> tuple[int, dict[str, int], str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env={**os.environ, "COLUMNS": "200"}, check=False)
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("COUNTS ")][-1]
    return proc.returncode, json.loads(line.split(" ", 1)[1]), proc.stdout + proc.stderr


def test_a_pass_reads_locks_and_validates_once(tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text(PLAN)
    # three scan jobs whose step entry is identical: one Step validated and checked, copied to the others
    once = {"plan_reads": 1, "lock_acquisitions": 1, "profiles": 1, "step_models": 1, "step_checks": 1}
    code, counts, out = run("run", "plan.toml", cwd=tmp_path)  # first pass: writes and starts 3 attempts
    assert code == EXIT_RUNNING and counts == once, out
    for _ in range(30):  # passes that poll and read; the fast path hands its lock to the full pass
        code, counts, out = run("run", "plan.toml", cwd=tmp_path)
        if code == EXIT_OK:
            break
        assert code == EXIT_RUNNING and counts == once, out
    assert code == EXIT_OK, out
    code, counts, out = run("run", "plan.toml", cwd=tmp_path)  # nothing to do: no plan expansion at all
    assert code == EXIT_OK and "nothing to do" in out
    assert counts == {"plan_reads": 1, "lock_acquisitions": 1}, out


@pytest.mark.parametrize("command", [["cancel", "plan.toml", "--wait", "0.2"], ["run", "plan.toml"]])
def test_a_busy_root_is_one_line_for_run_and_cancel(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "plan.toml").write_text(PLAN)
    (tmp_path / "runs").mkdir()
    with FileLock(str(tmp_path / "runs" / LOCK_FILE)):
        code, _, out = run(*command, cwd=tmp_path)
    lines = [ln for ln in out.splitlines() if not ln.startswith("COUNTS ")]
    assert code == EXIT_ERROR and "Traceback" not in out and "Timeout" not in out, out
    assert len(lines) == 1 and lines[0].startswith("error: another `autogenv2 run` is working on "), out
    assert "--wait SECONDS" in lines[0]


def test_a_plan_file_is_read_again_only_when_it_or_its_machines_file_changes(tmp_path: Path) -> None:
    from autogenv2.lock import COUNTS, read_plan_file

    plan, machines = tmp_path / "plan.toml", tmp_path / "machines.toml"
    machines.write_text('[machines.c]\nkind = "slurm"\n')
    plan.write_text('machines = "machines.toml"\n' + PLAN)
    before = COUNTS["plan_reads"]
    first = read_plan_file(plan)
    assert read_plan_file(plan) is first and COUNTS["plan_reads"] == before + 1
    machines.write_text('[machines.c]\nkind = "slurm"\npartition = "other"\n')
    second = read_plan_file(plan)
    assert second.fingerprint != first.fingerprint and COUNTS["plan_reads"] == before + 2
    plan.write_text('machines = "machines.toml"\n' + PLAN.replace("runs", "elsewhere"))
    third = read_plan_file(plan)
    assert third.root == tmp_path / "elsewhere" and COUNTS["plan_reads"] == before + 3
    plan.write_text("[[steps]\n")
    assert read_plan_file(plan).problem.startswith(f"{plan}: not valid TOML")


def test_nested_holds_of_a_root_share_one_acquisition(tmp_path: Path) -> None:
    from filelock import Timeout

    from autogenv2.lock import COUNTS, root_lock

    before = COUNTS["lock_acquisitions"]
    with root_lock(tmp_path, 0), root_lock(tmp_path, 0):
        assert COUNTS["lock_acquisitions"] == before + 1
        with pytest.raises(Timeout):  # the file really is locked (for another process, or lock object)
            FileLock(str(tmp_path / LOCK_FILE)).acquire(timeout=0.1)
    with FileLock(str(tmp_path / LOCK_FILE)).acquire(timeout=0.1):  # released after the outer hold
        pass
