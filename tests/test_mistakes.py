"""A newcomer's mistakes, each through the installed ``autogenv2`` console script: input → exit code → the
exact first line printed (and the last, where the outcome comes after the pass's own lines).

Exit codes: 0 all done, 1 the command could not do its work (invalid plan, ...), 2 usage, 3 some element
failed or is blocked, 4 still running (``run`` without ``--watch``), 130 interrupted.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "autogenv2"
pytestmark = pytest.mark.skipif(not SCRIPT.exists(),
                                reason=f"no console script at {SCRIPT} (pip install -e .)")

H2 = """root = "runs"
[[steps]]
name = "scf"
code = "pyscf"
method = "{method}"
basis = "{basis}"
unit = "bohr"
atom = "{atom}"
{extra}
[[jobs]]
id = "h2"
"""
TOY = """root = "runs"
[[steps]]
name = "a"
code = "toy"
method = "mc"
{a}
[[steps]]
name = "b"
code = "toy"
method = "mc"
[[jobs]]
id = "j"
"""
TOY_STEPS = TOY.split("[[jobs]]")[0].removeprefix('root = "runs"\n').format(a="")
SLOW = "nblocks = 4000\nseconds_per_block = 0.05"
QWALK = H2.format(method="rhf", basis="cc-pvdz", atom="H 0 0 0; H 0 0 1.4", extra="").replace("[[jobs]]", """
[[steps]]
name = "convert"
code = "qwalk"
method = "convert"
[[steps]]
name = "vmc"
code = "qwalk"
method = "vmc"
nconfig = 100
[[jobs]]""")
RUNNING = "still running: 1 job unfinished; `autogenv2 run` again (or `run --watch`) follows them"
INTERRUPTED = "interrupted; running attempts continue, `autogenv2 run` picks them up"
CANCELLED = "cancelled by user (run --retry-failed to resume)"


def h2(basis: str = "cc-pvdz", atom: str = "H 0 0 0; H 0 0 1.4", method: str = "rhf", extra: str = "") -> str:
    return H2.format(basis=basis, atom=atom, method=method, extra=extra)


@dataclass
class Mistake:
    plan: str
    args: list[str]
    code: int
    first: str
    """The exact first line printed."""
    last: str | None = None
    """The exact last line, where the first belongs to the pass (its first action)."""


RUN, WATCH = ["run", "plan.toml"], ["run", "plan.toml", "--watch"]
SCF = "error: plan.toml: job 'h2', step 'scf': "
STEP_A = "error: plan.toml: job 'j', step 'a': "
NBLOK = STEP_A + "unknown option 'nblok' (did you mean 'nblocks'?)"
BAD_TOY = TOY.format(a="nblok = 10")
MISTAKES = {
    "misspelt basis": Mistake(h2(basis="cc-pvdzz"), WATCH, 1, SCF + "option 'basis': basis 'cc-pvdzz' is "
                              "not known to PySCF (did you mean 'ccpvdz'?)"),
    "basis for one element": Mistake(h2().replace('basis = "cc-pvdz"', 'basis = { H = "nosuch" }'), RUN, 1,
                                     SCF + "option 'basis': basis 'nosuch' is not known to PySCF"),
    "misspelt ECP": Mistake(h2(atom="Li 0 0 0; H 0 0 3.0", basis="ccecp-ccpvdz", extra='ecp = "ccecpp"'),
                            RUN, 1, SCF + "option 'ecp': ECP 'ccecpp' is not known to PySCF "
                            "(did you mean 'ccecp'?)"),
    "basis table without an element": Mistake(h2(atom="Li 0 0 0; H 0 0 3.0").replace(
        'basis = "cc-pvdz"', 'basis = { Li = "ccpvdz" }'), RUN, 1,
        SCF + "option 'basis': no basis for H (the table {'Li': 'ccpvdz'} does not name it)"),
    "ECP basis without its ECP": Mistake(h2(atom="Li 0 0 0; H 0 0 3.0", basis="ccecp-ccpvdz"), RUN, 1,
                                         SCF + "option 'ecp': basis 'ccecp-ccpvdz' is made for a "
                                         "pseudopotential, but ecp is not set: add ecp = 'ccecp' (or the ECP "
                                         "it belongs to), or use an all-electron basis"),
    "Hx as an atom": Mistake(h2(atom="Hx 0 0 0; H 0 0 1.4"), WATCH, 1,
                             SCF + "option 'atom': unknown element 'Hx' in 'Hx 0 0 0; H 0 0 1.4'"),
    "atom without coordinates": Mistake(h2(atom="H 0 0 0; H 0 0"), RUN, 1, SCF + "option 'atom': PySCF "
                                        "cannot read 'H 0 0 0; H 0 0': Coordinates error in H 0 0"),
    "one electron with RHF": Mistake(h2(atom="H 0 0 0"), WATCH, 1, SCF + "option 'spin': 1 electron "
                                     "(charge 0) cannot have spin = 0 (2S = N_alpha - N_beta must be odd); "
                                     "set spin = 1 and method = 'uhf' or 'rohf'"),
    "open shell with RHF": Mistake(h2(atom="H 0 0 0", extra="spin = 1"), RUN, 1, SCF + "option 'method': "
                                   "'rhf' needs a closed shell, but spin = 1 (1 electron); use 'rohf' or "
                                   "'uhf' (or 'uks')"),
    "charge beyond the electrons": Mistake(h2(method="uhf", extra="charge = 5"), RUN, 1,
                                           SCF + "option 'charge': charge = 5 leaves -3 electrons"),
    "spin beyond the electrons": Mistake(h2(method="uhf", extra="spin = 4"), RUN, 1, SCF + "option 'spin': "
                                         "spin = 4 needs at least that many electrons; there are 2"),
    "element the basis lacks": Mistake(h2(atom="X 0 0 0; H 0 0 1.4", method="uhf"), RUN, 1,
                                       SCF + "option 'basis': basis 'cc-pvdz' has no functions for X"),
    "code in a coordinate": Mistake(h2(atom="H 0 0 0; H 0 0 __import__('os').getpid()"),
                                    ["status", "plan.toml"], 1, SCF + "option 'atom': PySCF cannot read "
                                    "\"H 0 0 0; H 0 0 __import__('os').getpid()\": Failed to parse geometry "
                                    "H 0 0 __import__('os').getpid()"),
    "QWalk missing": Mistake(QWALK, WATCH, 1, "error: plan.toml: job 'h2', step 'vmc': qwalk not found: set "
                             "AUTOGENV2_QWALK to the QWalk binary (e.g. /opt/qwalk/bin/qwalk), or put "
                             "'qwalk' on PATH"),
    "number as a string": Mistake(TOY.format(a='tstep = "0.02"'), RUN, 1, STEP_A + "option 'tstep': expected "
                                  "a number, got the string '0.02' (write it without quotes)"),
    "step key as a string": Mistake(TOY.format(a='max_retries = "3"'), RUN, 1, STEP_A + "option "
                                    "'max_retries': expected an integer, got the string '3' (write it "
                                    "without quotes)"),
    "nblocks = 10^12": Mistake(TOY.format(a="nblocks = 1_000_000_000_000"), WATCH, 1, STEP_A + "option "
                               "'nblocks': 1000000000000 is far beyond any plausible run (> 1e+06 blocks); "
                               "even at 0.01 s each it costs ≥ 2.78e+06 core-hours. Lower it, or set "
                               "max_core_hours to allow it"),
    "no [[jobs]]": Mistake(TOY.format(a="").split("[[jobs]]")[0], RUN, 1, "error: plan.toml: no jobs: add at "
                           "least one [[jobs]] table with an 'id', or a [[scans]] table"),
    "steps not [[steps]]": Mistake('steps = "a"\n[[jobs]]\nid = "j"\n', RUN, 1,
                                   "error: plan.toml: 'steps' must be an array of tables ([[steps]])"),
    "report on an invalid plan": Mistake(BAD_TOY, ["report", "plan.toml"], 1, NBLOK),
    "status on an invalid plan": Mistake(BAD_TOY, ["status", "plan.toml"], 1, NBLOK),
    "status --plain on an invalid plan": Mistake(BAD_TOY, ["status", "plan.toml", "--plain"], 1, NBLOK),
    "results on an invalid plan": Mistake(BAD_TOY, ["results", "plan.toml"], 1, NBLOK),
    "describe an unknown code": Mistake("", ["describe", "vasp"], 1,
                                        "error: unknown code 'vasp'; known codes: pyscf, pyqmc, qwalk, toy"),
    "run still running": Mistake(TOY.format(a=SLOW), RUN, 4, "  j/a: wrote inputs", RUNNING),
    "SCF that cannot converge": Mistake(h2(extra="max_cycle = 1").replace("[[jobs]]", TOY_STEPS + "[[jobs]]"),
                                        [*WATCH, "--interval", "0.2"], 3, "  h2/scf: wrote inputs",
                                        "failed: 1 element (h2/scf: SCF did not converge (raise max_cycle or "
                                        "change the initial guess)); blocked by them: h2/a, h2/b (`autogenv2 "
                                        "status` for details)"),
}


def cli(args: list[str], cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env={**(env or os.environ), "COLUMNS": "200"}, check=False)


def without_qwalk() -> dict[str, str]:
    """The environment with no QWalk: AUTOGENV2_QWALK unset, no PATH entry holding a qwalk."""
    env = {k: v for k, v in os.environ.items() if k != "AUTOGENV2_QWALK"}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and not (Path(p) / "qwalk").exists())
    return env


def first_and_last(proc: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return (lines[0], lines[-1]) if lines else ("", "")


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_mistake_gives_its_code_and_first_line(name: str, tmp_path: Path) -> None:
    mistake = MISTAKES[name]
    (tmp_path / "plan.toml").write_text(mistake.plan)
    started = time.time()
    proc = cli(mistake.args, tmp_path, without_qwalk() if "QWalk" in name else None)
    out = proc.stdout + proc.stderr
    first, last = first_and_last(proc)
    try:
        assert "Traceback" not in out, out
        assert (proc.returncode, first) == (mistake.code, mistake.first), out
        if mistake.last is not None:
            assert last == mistake.last, out
        if mistake.code == 1 and mistake.args[0] == "run":
            assert not (tmp_path / "runs").exists(), "a mistake caught before running creates nothing"
            assert time.time() - started < 30
    finally:
        if (tmp_path / "runs").exists():
            cli(["cancel", "plan.toml"], tmp_path)


def test_missing_qwalk_records_no_attempt(tmp_path: Path) -> None:
    """Fails within one pass, before the SCF and convert run: no attempt of anything is recorded."""
    (tmp_path / "plan.toml").write_text(QWALK)
    proc = cli(["run", "plan.toml", "--watch"], tmp_path, without_qwalk())
    assert proc.returncode == 1 and "qwalk not found" in proc.stdout and "AUTOGENV2_QWALK" in proc.stdout
    assert len(proc.stdout.strip().splitlines()) == 1 and not (tmp_path / "runs").exists()


def test_coordinates_are_never_evaluated(tmp_path: Path) -> None:
    """PySCF eval()s a coordinate it cannot read as a number unless told not to: a plan is data, not code."""
    marker = tmp_path / "evaluated"
    code = f"__import__('pathlib').Path('{marker}').touch()"
    (tmp_path / "plan.toml").write_text(h2(atom=f"H 0 0 0; H 0 0 {code}"))
    for command in (["status", "plan.toml"], ["run", "plan.toml"]):
        proc = cli(command, tmp_path)
        assert proc.returncode == 1 and "Failed to parse geometry" in proc.stdout, proc.stdout
    assert not marker.exists()


def test_cancel_status_retry_ctrl_c_through_the_script(tmp_path: Path) -> None:
    """run (4) → cancel → every view says failed/blocked at once → run (3) → --retry-failed → Ctrl-C (130)."""
    (tmp_path / "plan.toml").write_text(TOY.format(a=SLOW))
    assert cli(["run", "plan.toml"], tmp_path).returncode == 4
    cancel = cli(["cancel", "plan.toml"], tmp_path)
    assert cancel.returncode == 0 and re.fullmatch(r"j/a: cancelled local \d+", first_and_last(cancel)[0])
    assert first_and_last(cancel)[1] == f"j/b: blocked: a failed ({CANCELLED})"
    plain = cli(["status", "plan.toml", "--plain"], tmp_path)
    assert plain.stdout.splitlines()[0].split()[:4] == ["j", "a", "failed", "1"], plain.stdout
    assert plain.stdout.splitlines()[1].split()[:3] == ["j", "b", "blocked"], plain.stdout
    assert "running" not in cli(["status", "plan.toml"], tmp_path).stdout
    assert "running" not in cli(["results", "plan.toml"], tmp_path).stdout
    failed = f"failed: 1 element (j/a: {CANCELLED}); blocked by them: j/b (`autogenv2 status` for details)"
    again = cli(["run", "plan.toml"], tmp_path)
    assert again.returncode == 3
    assert first_and_last(again) == ("nothing to do: every job is done or failed", failed)
    watched = cli(["run", "plan.toml", "--watch"], tmp_path)
    assert watched.returncode == 3 and first_and_last(watched)[1] == failed
    # SIGINT's default action, whatever this process inherited: a shell without job control starts its
    # background commands with SIGINT ignored, and Python then never raises KeyboardInterrupt
    proc = subprocess.Popen([str(SCRIPT), *WATCH, "--retry-failed", "--interval", "0.3"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:  # Ctrl-C once the retry shows (a fixed sleep was too short on a loaded machine)
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline:
            shown = cli(["status", "plan.toml", "--plain"], tmp_path).stdout.splitlines()
            if shown and shown[0].split()[:3] == ["j", "a", "running"]:
                break
            time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    lines = [line for line in out.splitlines() if line.strip()]
    assert proc.returncode == 130 and lines[-1] == INTERRUPTED, out
    assert lines[0] == f"  j/a: reopened (was failed: {CANCELLED})", out
    rows = cli(["status", "plan.toml", "--plain"], tmp_path).stdout.splitlines()
    assert rows[0].split()[:3] == ["j", "a", "running"], rows  # the retry is visible at once
    assert rows[1].split()[:3] == ["j", "b", "planned"], rows  # unblocked
    cli(["cancel", "plan.toml"], tmp_path)
