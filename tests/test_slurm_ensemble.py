"""Whole ensembles through the real one-node SLURM cluster (slurm-localhost.sh, started by .ci/run).

PySCF + PyQMC runs submitted with sbatch; walltime kills, a scancel behind autogenv2's back,
and slurmctld stopped and restarted mid-ensemble. Every job submitted is scancel'ed at the end.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.stats

from autogenv2 import Job, Plan, Step, reconcile, watch
from autogenv2.runners.base import Resources
from autogenv2.states import State
from autogenv2.status import ElementStatus, JobStatus
from conftest import TINY_PLAN, autogenv2
from test_runner_slurm import SLURM

pytestmark = [pytest.mark.slurm, pytest.mark.slow,
              pytest.mark.skipif(not SLURM, reason="squeue/sbatch not on PATH or the SLURM controller "
                                                   "does not answer")]

MACHINES = '[machines.cluster]\nkind = "slurm"\npartition = "debug"\n'
H2 = {"atom": "H 0 0 0; H 0 0 1.4", "unit": "bohr", "basis": "cc-pvdz"}
SLURM_DIR = Path(os.environ.get("SLURM_LOCAL_DIR", "/var/tmp/slurm-localhost"))
CTLD_PID = SLURM_DIR / "slurmctld.pid"


@pytest.fixture
def submitted(tmp_path: Path) -> Iterator[None]:
    """scancel every SLURM job any status.json under tmp_path records, whatever happens."""
    yield
    ids = [a.runner_id for status in _statuses(tmp_path) for e in status.elements for a in e.attempts
           if a.runner_id]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=60)


def _statuses(base: Path) -> list[JobStatus]:
    found = []
    for path in base.rglob("status.json"):
        status = JobStatus.load(path.parent)
        if status is not None:
            found.append(status)
    return found


def slurm_plan(root: Path, steps: list[Step], job_id: str = "j") -> Plan:
    root.mkdir(parents=True, exist_ok=True)
    (root / "machines.toml").write_text(MACHINES)
    plan = Plan(root=root / "runs", jobs=[Job(id=job_id, steps=steps)], machines=root / "machines.toml")
    return plan.check()


def plan_toml(steps: list[Step], job_id: str = "j") -> str:
    """The same plan as a TOML file for the CLI (root "runs", profiles in machines.toml)."""
    lines = ['root = "runs"', 'machines = "machines.toml"']
    for step in steps:
        keys = ("name", "code", "method", "runner")
        lines += ["[[steps]]", *(f"{key} = {json.dumps(getattr(step, key))}" for key in keys)]
        lines += [f"{key} = {json.dumps(value)}" for key, value in step.options.items()]
    return "\n".join([*lines, "[[jobs]]", f"id = {json.dumps(job_id)}", ""])


def run_until(plan: Plan, done: Callable[[JobStatus], bool], timeout: float = 240) -> JobStatus:
    """reconcile() passes until ``done(status)`` holds; return that status."""
    deadline = time.time() + timeout
    while True:
        reconcile(plan)
        status = JobStatus.load(plan.root / plan.jobs[0].id)
        assert status is not None
        if done(status):
            return status
        assert time.time() < deadline, [(e.name, e.state.value, e.reason) for e in status.elements]
        time.sleep(1)


def finish(plan: Plan, timeout: int = 600) -> JobStatus:
    watch(plan, interval=1, on_pass=lambda report: None, max_passes=timeout)
    status = JobStatus.load(plan.root / plan.jobs[0].id)
    assert status is not None
    return status


def dmc_running(job_dir: Path, seconds: float) -> Callable[[JobStatus], bool]:
    """A predicate: the DMC attempt's program has run ``seconds`` (per the wrapper's .started marker;
    status.json keeps the start time only from the pass that first saw the attempt running) and has
    written its first block (PyQMC creates dmc.hdf5 with it; at load 7 none was there after 3 s)."""
    def check(status: JobStatus) -> bool:
        dmc = status.element("dmc")
        assert dmc.state not in (State.done, State.failed), f"DMC ended before the test acted: {dmc.reason}"
        if dmc.state is not State.running or not dmc.attempts or not dmc.attempts[-1].runner_id:
            return False
        marker = job_dir / "dmc" / ".autogenv2" / f"{dmc.attempts[-1].token}.started"
        if not marker.exists() or not (job_dir / "dmc" / "dmc.hdf5").exists():
            return False
        return time.time() - json.loads(marker.read_text())["started_at"] > seconds
    return check


def assert_merged_estimate(run_dir: Path, result: dict, warmup: int, nblocks: int, nconfig: int) -> None:
    """The published DMC estimate is the merged file's, every block once: the all-walker mean (PyQMC's
    block energies by their weights), the shift to the walker-weighted mean of the populations' energies
    Σw·E/Σw, and the error their run means' scatter (G − 1 dof, × t_{G−1}(0.9)/z(0.9)), computed here
    with plain numpy from the file (issue 14)."""
    with h5py.File(run_dir / "dmc.hdf5", "r") as handle:
        # a drift finding samples as much again (health.FIXES), so the run may be longer than planned
        blocks = max(nblocks, int(result.get("blocks", nblocks)))
        assert list(handle["block"][()]) == list(range(blocks)), "no block lost or repeated"
        total, weight = np.real(handle["energytotal"][:blocks]), handle["weight"][:blocks]
        energy = handle["energygroups"][()][:blocks] / handle["energygroupweight"][()][:blocks]
    # the plan's warm-up, or the longer one an equilibration health fix chose (recorded in the result)
    used = result.get("warmup", warmup)
    assert used >= warmup
    groups = energy.shape[1]
    assert groups == min(16, nconfig // 10) and result["error_method"] == f"{groups} DMC populations"
    sizes = np.array([len(part) for part in np.array_split(np.arange(nconfig), groups)], dtype=float)
    run_means = energy[used:].mean(axis=0)
    mean = float(run_means @ sizes / sizes.sum())
    spread = np.sqrt(np.sum(sizes * (run_means - mean) ** 2) / (groups - 1) / sizes.sum())
    error = float(spread * scipy.stats.t.ppf(0.9, groups - 1) / scipy.stats.norm.ppf(0.9))
    everyone = float(np.sum(total[used:] * weight[used:]) / np.sum(weight[used:]))
    assert result["energy"] == pytest.approx(everyone, abs=1e-12)
    assert result["population_shift"] == pytest.approx(mean - everyone, abs=1e-12)
    assert result["error"] == pytest.approx(error, rel=1e-9)
    assert result["energy"] == pytest.approx(-1.1745, abs=0.02)


def test_tiny_ensemble_runs_through_slurm_via_cli(tmp_path: Path, submitted: None) -> None:
    plan_text = TINY_PLAN.replace('root = "runs"', 'root = "runs"\nmachines = "machines.toml"')
    plan_text = plan_text.replace('code = "pyscf"', 'code = "pyscf"\nrunner = "cluster"')
    plan_text = plan_text.replace('code = "pyqmc"', 'code = "pyqmc"\nrunner = "cluster"')
    (tmp_path / "plan.toml").write_text(plan_text)
    (tmp_path / "machines.toml").write_text(MACHINES)
    proc = autogenv2("run", str(tmp_path / "plan.toml"), "--watch", "--interval", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = JobStatus.load(tmp_path / "runs" / "h2")
    assert status is not None
    assert [e.state for e in status.elements] == [State.done] * 4
    for element in status.elements:
        for attempt in element.attempts:
            assert attempt.runner == "cluster" and attempt.runner_id.isdigit(), attempt
            marker = tmp_path / "runs" / "h2" / element.name / ".autogenv2" / f"{attempt.token}.exit"
            assert json.loads(marker.read_text())["exit_code"] == 0
            assert (marker.parent / f"{attempt.token}.jobid").read_text().strip() == attempt.runner_id
    assert status.element("scf").result["energy"] == pytest.approx(-1.1287094, abs=1e-6)
    for name in ("vmc", "dmc"):
        result = status.element(name).result
        assert 0 < result["error"] < 0.02 and -1.20 < result["energy"] < -1.14, (name, result)


def _seconds_per_block(tmp_path: Path) -> float:
    """Calibrate: seconds per DMC block with the walltime test's settings, startup cancelled out
    by running 20 and 140 blocks as two elements of one job."""
    dmc = {"nconfig": 200, "tstep": 0.02, "warmup": 5, "seed": 1}
    steps = [Step(name="scf", code="pyscf", method="rhf", options=H2, runner="cluster"),
             Step(name="short", code="pyqmc", method="dmc", runner="cluster", after="scf",
                  options={**dmc, "nblocks": 20}),
             Step(name="long", code="pyqmc", method="dmc", runner="cluster", after="short",  # one at a time
                  options={**dmc, "nblocks": 140})]
    status = finish(slurm_plan(tmp_path / "calib", steps, "calib"))
    short, long = (status.element(name).attempts[-1].seconds for name in ("short", "long"))
    assert short is not None and long is not None and status.element("long").state is State.done
    return (long - short) / 120


def scheduler_state(job_id: str) -> str:
    """The job's final state as slurmctld remembers it (MinJobAge keeps it for an hour)."""
    done = subprocess.run(["scontrol", "--oneliner", "show", "job", job_id], capture_output=True, text=True,
                          timeout=60, check=True)
    return dict(word.split("=", 1) for word in done.stdout.split() if "=" in word)["JobState"]


def test_walltime_kill_under_slurm_continues_and_merges(tmp_path: Path, submitted: None) -> None:
    """A 1-minute DMC job is stopped by the wrapper before SLURM's limit and continued from its walkers."""
    per_block = _seconds_per_block(tmp_path)
    nblocks = int(65 / per_block)  # the first attempt computes ~42 s (60 s minus the wrapper's margin)
    print(f"\nDMC: {per_block:.3f} s/block -> nblocks {nblocks}")
    steps = [Step(name="scf", code="pyscf", method="rhf", options=H2, runner="cluster"),
             Step(name="dmc", code="pyqmc", method="dmc", runner="cluster", after="scf", max_retries=0,
                  resources=Resources(walltime="00:01:00"),
                  options={"nconfig": 200, "nblocks": nblocks, "tstep": 0.02, "warmup": 5, "seed": 2})]
    dmc = finish(slurm_plan(tmp_path, steps)).element("dmc")
    print("attempts:", [(a.reason, a.blocks, round(a.seconds or 0, 1)) for a in dmc.attempts], dmc.result)
    assert dmc.state is State.done, dmc.reason
    assert len(dmc.attempts) >= 2
    first = dmc.attempts[0]
    assert first.reason == "walltime" and first.verdict == "incomplete" and first.exit_code == -15
    assert first.seconds is not None and first.seconds < 60 - 10, "stopped before SLURM's limit"
    assert scheduler_state(first.runner_id) == "FAILED", "the wrapper (exit 1), not SLURM (TIMEOUT), ended it"
    blocks = [a.blocks for a in dmc.attempts]
    assert blocks == sorted(blocks) and 0 < blocks[0] < nblocks and blocks[-1] == nblocks, blocks
    assert_merged_estimate(tmp_path / "runs" / "j" / "dmc", dmc.result, 5, nblocks, 200)


def test_scancel_behind_our_back_is_recorded_and_continued(tmp_path: Path, submitted: None) -> None:
    """scancel of a running DMC: reason "cancelled"; its blocks are progress, so the same run continues."""
    steps = [Step(name="scf", code="pyscf", method="rhf", options=H2, runner="cluster"),
             Step(name="dmc", code="pyqmc", method="dmc", runner="cluster", after="scf", max_retries=0,
                  options={"nconfig": 100, "nblocks": 600, "tstep": 0.02, "warmup": 5, "seed": 3})]
    plan = slurm_plan(tmp_path, steps)  # 600 blocks: about 20 s on an idle machine, so 3 s in it still runs
    victim = run_until(plan, dmc_running(plan.root / "j", 3)).element("dmc").attempts[-1]
    subprocess.run(["scancel", victim.runner_id], check=True, capture_output=True, timeout=60)
    after = run_until(plan, lambda s: s.element("dmc").attempts[0].phase == "finished", timeout=60)
    first = after.element("dmc").attempts[0]
    assert first.reason == "cancelled" and scheduler_state(first.runner_id) == "CANCELLED"
    assert first.verdict == "incomplete" and (first.blocks or 0) > 0, first
    dmc = finish(plan).element("dmc")
    print("\nscancel:", [(a.reason, a.verdict, a.blocks) for a in dmc.attempts], dmc.result.get("energy"))
    assert dmc.state is State.done and len(dmc.attempts) >= 2
    assert dmc.attempts[0].blocks == first.blocks and dmc.attempts[-1].blocks == 600
    assert_merged_estimate(tmp_path / "runs" / "j" / "dmc", dmc.result, 5, 600, 100)


def _squeue_answers() -> bool:
    try:
        return subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, timeout=15).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _ctld_pid() -> int | None:
    try:
        pid = int(CTLD_PID.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}/comm").read_text().strip() == "slurmctld" else None


def _start_ctld() -> None:
    """Start slurmctld alone, recovering its saved job state (as slurm-localhost.sh does, minus the wipe)."""
    daemon = shutil.which("slurmctld") or shutil.which("slurmctld", path="/usr/sbin:/usr/local/sbin:/sbin")
    assert daemon, "slurmctld not found on PATH or in /usr/sbin"
    subprocess.run([daemon, "-i"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60, cwd="/")  # daemonizes; no pipes for the daemon to hold open
    deadline = time.time() + 60
    while not _squeue_answers():
        assert time.time() < deadline, "slurmctld did not answer after a restart"
        time.sleep(0.5)


@pytest.fixture
def controller() -> Iterator[None]:
    """Leave slurmctld running at the end, whatever the test did (state kept: SLURM_LOCAL_KEEP=1)."""
    yield
    if _ctld_pid() is None or not _squeue_answers():
        _start_ctld()  # fails the test loudly if the controller cannot come back


@pytest.mark.skipif(not CTLD_PID.exists() or os.geteuid() != 0,
                    reason="needs root and the slurmctld started by slurm-localhost.sh")
def test_controller_restart_mid_ensemble(tmp_path: Path, submitted: None, controller: None) -> None:
    steps = [Step(name="scf", code="pyscf", method="rhf", options=H2, runner="cluster"),
             Step(name="dmc", code="pyqmc", method="dmc", runner="cluster", after="scf",
                  options={"nconfig": 100, "nblocks": 400, "tstep": 0.02, "warmup": 5, "seed": 4})]
    plan = slurm_plan(tmp_path, steps)
    (tmp_path / "plan.toml").write_text(plan_toml(steps))
    run_until(plan, dmc_running(plan.root / "j", 2))
    before = (plan.root / "j" / "status.json").read_text()
    pid = _ctld_pid()
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + 30
    while _ctld_pid() is not None or _squeue_answers():
        assert time.time() < deadline, "slurmctld did not stop"
        time.sleep(0.3)
    proc = autogenv2("run", str(tmp_path / "plan.toml"), timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "runner 'cluster': cannot poll" in proc.stdout and "squeue" in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    print("\noutage pass:", [line for line in proc.stdout.splitlines() if "error" in line])
    status = json.loads((plan.root / "j" / "status.json").read_text())
    status.pop("updated_at"), (old := json.loads(before)).pop("updated_at")
    assert status == old, "a pass that cannot poll changes nothing"
    _start_ctld()
    dmc = finish(plan).element("dmc")
    assert dmc.state is State.done and dmc.result["blocks"] == 400
    assert len(dmc.attempts) == 1 and dmc.attempts[0].runner_id.isdigit(), "the job survived the outage"
    assert_merged_estimate(tmp_path / "runs" / "j" / "dmc", dmc.result, 5, 400, 100)


def _bundled(tmp_path: Path, i: int) -> ElementStatus:
    """Element "mc" of job b{i} of the bundling test."""
    status = JobStatus.load(tmp_path / "runs" / f"b{i}")
    assert status is not None, f"job b{i} has no status.json"
    return status.element("mc")


def test_bundling_profile_packs_small_elements_into_one_allocation(tmp_path: Path, submitted: None) -> None:
    """A profile with bundle = 3: three jobs' toy runs share one SLURM job, each judged by its own token."""
    (tmp_path / "machines.toml").write_text(MACHINES + "bundle = 3\n")
    jobs = [Job(id=f"b{i}", steps=[Step(name="mc", code="toy", method="mc", runner="cluster",
                                         options={"nblocks": 20, "seconds_per_block": 0.0, "seed": i})])
            for i in range(3)]
    plan = Plan(root=tmp_path / "runs", jobs=jobs, machines=tmp_path / "machines.toml").check()
    first = reconcile(plan)
    assert any("bundled 3 attempts into cluster job" in a for a in first.actions), first.actions
    watch(plan, interval=1.0, on_pass=lambda report: None, max_passes=120)
    attempts = [_bundled(tmp_path, i).attempts for i in range(3)]
    assert all(len(a) == 1 for a in attempts)
    ids = {a[0].runner_id for a in attempts}
    assert len(ids) == 1 and next(iter(ids)).isdigit(), ids
    for i in range(3):
        element = _bundled(tmp_path, i)
        assert element.state is State.done and element.result["blocks"] == 20
        markers = tmp_path / "runs" / f"b{i}" / "mc" / ".autogenv2"
        assert (markers / f"{element.attempts[0].token}.exit").exists()
