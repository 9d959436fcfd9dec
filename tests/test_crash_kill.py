"""SIGKILL `autogenv2 run --watch` hundreds of times on a toy-engine ensemble; nothing is lost or repeated.

How the kill points cover the dangerous windows
-----------------------------------------------
Each cycle starts the real CLI (``autogenv2 run PLAN --watch --interval 0.05``) in a child process and
SIGKILLs it. Most children are forked from this (already imported) test process and call
``autogenv2.cli.main`` — a separate process running the real code, without 1 s of imports per kill;
some are exec'd with ``python -m autogenv2.cli`` to cover the real entry point. The kill comes either

* from outside after a random delay, drawn mostly very short (40 % below 30 ms, 30 % below 250 ms,
  the rest below 1 s), so it lands anywhere: in a status write, in a launch, between two steps; or
* from inside, at an exact point: the child's ``storage.os.replace`` is wrapped (in the child only,
  core files untouched) to SIGKILL itself just before or just after the n-th ``status.json`` rename,
  and ``LocalRunner.start`` to SIGKILL itself just before the n-th submission (the attempt is saved
  as ``submitting``, the runner has not heard of it) or just after it (the process runs, its runner id
  is not saved). These are the windows docs/architecture.md calls out.

After every kill: every status.json loads, no attempt token appears twice, every ``.started`` marker
belongs to a recorded attempt and only the last attempt, still ``submitting``, may lack one, and the
toy program has not started more often than markers exist. At the end of each round the ensemble
completes with energies, error bars and block series identical to an uninterrupted run.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from autogenv2 import cli, storage
from autogenv2.runners.local import LocalRunner
from autogenv2.status import JobStatus
from conftest import autogenv2

pytestmark = pytest.mark.slow

KILLS = 200
JOBS = ("a", "b", "c", "d")
STEPS = ("warm", "main")

PLAN = """
root = "runs"
[[steps]]
name = "warm"
code = "toy"
method = "mc"
nblocks = 16
seconds_per_block = 0.002
[[steps]]
name = "main"
code = "toy"
method = "mc"
nblocks = 16
seconds_per_block = 0.002
target_error = 0.03
""" + "".join(f'[[jobs]]\nid = "{job}"\nwarm = {{seed = {i}}}\nmain = {{seed = {10 + i}}}\n'
              for i, job in enumerate(JOBS))

INJECTED = ("before-replace", "after-replace", "before-submit", "after-submit")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _inject(mode: str, count: int) -> None:
    """In the child only: SIGKILL ourselves at the count-th status rename or submission."""
    hits = [0]

    def hit() -> bool:
        hits[0] += 1
        return hits[0] == count

    if mode in ("before-replace", "after-replace"):
        class OsProxy:
            def __getattr__(self, name: str) -> Any:
                return getattr(os, name)

            def replace(self, src: Any, dst: Any) -> None:
                fire = Path(dst).name == "status.json" and hit()
                if fire and mode == "before-replace":
                    _die()
                os.replace(src, dst)
                if fire:
                    _die()

        storage.os = OsProxy()  # type: ignore[assignment]
    elif mode in ("before-submit", "after-submit"):
        original = LocalRunner.start

        def start(self: LocalRunner, request: Any) -> str:
            fire = hit()
            if fire and mode == "before-submit":
                _die()
            runner_id = original(self, request)
            if fire:
                _die()
            return runner_id

        LocalRunner.start = start  # type: ignore[method-assign]


def _fork_cli(plan: Path, mode: str, count: int) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 99
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        _inject(mode, count)
        code = cli.main(["run", str(plan), "--watch", "--interval", "0.05"])
    finally:
        os._exit(code)


def _delay(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.4:
        return rng.uniform(0.0, 0.03)
    if roll < 0.7:
        return rng.uniform(0.03, 0.25)
    return rng.uniform(0.25, 1.0)


def _wait(pid: int, seconds: float) -> int | None:
    """Wait for ``pid`` up to ``seconds``: its raw wait status, or None if it still runs."""
    deadline = time.monotonic() + seconds
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            return None
        time.sleep(0.002)


def check_invariants(root: Path) -> None:
    """What must hold after any kill."""
    for job in JOBS:
        job_dir = root / job
        status = JobStatus.load(job_dir) if job_dir.exists() else None
        if status is None:
            assert not any((job_dir / step).exists() for step in STEPS), f"{job}: runs without status"
            continue
        tokens = [a.token for e in status.elements for a in e.attempts]
        assert len(tokens) == len(set(tokens)), f"{job}: an attempt token appears twice: {tokens}"
        for element in status.elements:
            where = f"{job}/{element.name}"
            recorded = [a.token for a in element.attempts]
            markers = {p.name.removesuffix(".started")
                       for p in (job_dir / element.name / ".autogenv2").glob("*.started")}
            assert markers <= set(recorded), f"{where}: started but never recorded: {markers - set(recorded)}"
            abandoned = {a.token for a in element.attempts if a.reason == "never started (abandoned)"}
            for token in abandoned:  # claimed by autogenv2, so its launch can never run the program
                claim = job_dir / element.name / ".autogenv2" / f"{token}.claim"
                assert claim.exists(), f"{where}: {token}"
            missing = [t for t in recorded if t not in markers and t not in abandoned]
            assert missing in ([], recorded[-1:]), f"{where}: attempts without a start marker: {missing}"
            if missing:
                assert element.attempts[-1].phase == "submitting", f"{where}: {element.attempts[-1]}"
            starts_file = job_dir / element.name / "starts.txt"
            starts = len(starts_file.read_text().split()) if starts_file.exists() else 0
            assert starts <= len(markers), (f"{where}: the program started {starts} times for {len(markers)} "
                                            "markers")


def outcome(root: Path) -> dict[str, Any]:
    """Per element: state, attempts, results and the block series, for comparison between runs."""
    found = {}
    for job in JOBS:
        status = JobStatus.load(root / job)
        assert status is not None
        for element in status.elements:
            series = json.loads((root / job / element.name / "blocks.json").read_text())["energy"]
            starts = len((root / job / element.name / "starts.txt").read_text().split())
            launched = [a for a in element.attempts if a.reason != "never started (abandoned)"]
            found[f"{job}/{element.name}"] = {"state": element.state.value, "attempts": len(launched),
                                              "starts": starts, "result": element.result, "series": series}
    return found


def assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got.keys() == want.keys()
    for key, ref in want.items():
        new = got[key]
        assert new["state"] == ref["state"] == "done", key
        assert new["attempts"] == ref["attempts"] == new["starts"], (key, new["attempts"], new["starts"])
        assert len(new["series"]) == len(ref["series"]), key
        assert max(abs(a - b) for a, b in zip(new["series"], ref["series"], strict=True)) <= 1e-12, key
        for name in ("energy", "error", "blocks"):
            assert new["result"][name] == pytest.approx(ref["result"][name], abs=1e-12), (key, name)


def _finish(base: Path) -> dict[str, Any]:
    proc = autogenv2("run", str(base / "plan.toml"), "--watch", "--interval", "0.05", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check_invariants(base / "runs")
    return outcome(base / "runs")


def _new_round(tmp_path: Path, number: int) -> Path:
    base = tmp_path / f"round{number}"
    base.mkdir()
    (base / "plan.toml").write_text(PLAN)
    return base


def test_kill_just_before_submission_runs_the_program_once(tmp_path: Path) -> None:
    """Deterministic: SIGKILL at the first submission (attempt saved as submitting), then run to the end."""
    base = _new_round(tmp_path, 0)
    (base / "plan.toml").write_text(PLAN.split("[[steps]]")[0] + "[[steps]]" + PLAN.split("[[steps]]")[1]
                                    + '[[jobs]]\nid = "a"\n')
    status = _wait(_fork_cli(base / "plan.toml", "before-submit", 1), 30.0)
    assert status is not None and os.WIFSIGNALED(status), status
    proc = autogenv2("run", str(base / "plan.toml"), "--watch", "--interval", "0.05", timeout=120)
    assert proc.returncode == 0, proc.stdout
    job = JobStatus.load(base / "runs" / "a")
    assert job is not None
    starts = (base / "runs" / "a" / "warm" / "starts.txt").read_text().split()
    launched = [a for a in job.elements[0].attempts if a.reason != "never started (abandoned)"]
    assert (len(launched), len(starts)) == (1, 1)


def test_sigkill_hundreds_of_times_loses_and_repeats_nothing(tmp_path: Path) -> None:
    began = time.monotonic()
    reference = _finish(_new_round(tmp_path, 0))
    rng = random.Random(2026)
    kills, rounds, by_mode, exec_kills = 0, 0, {m: 0 for m in ("timer", *INJECTED)}, 0
    base = _new_round(tmp_path, 1)
    while kills < KILLS:
        mode = rng.choice(("timer", "timer", *INJECTED))
        if rng.random() < 0.08:  # the real entry point, exec'd: kill after its ~1 s of imports
            proc = subprocess.Popen([sys.executable, "-m", "autogenv2.cli", "run", str(base / "plan.toml"),
                                     "--watch", "--interval", "0.05"], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.4, 2.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                exec_kills += 1
            code: int | None = proc.wait()
            status = None if code == -signal.SIGKILL else (code or 0) << 8
        else:
            pid = _fork_cli(base / "plan.toml", mode, rng.randint(1, 4))
            status = _wait(pid, _delay(rng) if mode == "timer" else 5.0)
            if status is None:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                mode = "timer"
        if status is None or (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
            kills += 1
            by_mode[mode] += 1
        else:
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"run ended with status {status}"
        check_invariants(base / "runs")
        if status is not None and os.WIFEXITED(status):  # the ensemble finished between kills
            assert_same(outcome(base / "runs"), reference)
            rounds += 1
            base = _new_round(tmp_path, rounds + 1)
    assert_same(_finish(base), reference)
    leftovers = list(tmp_path.glob("round*/runs/*/status.json.tmp-*"))
    elapsed = time.monotonic() - began
    print(f"\n{kills} SIGKILLs ({by_mode}, {exec_kills} of them exec'd CLIs) over {rounds} completed rounds "
          f"+ 1 finished after; {len(leftovers)} stray status temp files; {elapsed:.0f} s")
    assert kills >= KILLS and rounds >= 1
    assert all(by_mode[m] > 0 for m in INJECTED), by_mode
