"""Whole ensembles through the live one-node OpenPBS 23.06 server (pbs-localhost.sh, started by .ci/run).

PySCF + PyQMC runs submitted with qsub through a machine profile kind = "pbs": the CLI's
``run --watch`` with a DMC stopped at its walltime and continued, a qdel behind autogenv2's back,
and a bundling profile. Every job submitted is qdel'ed at the end.
"""
from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from autogenv2 import Job, Plan, Step, reconcile, watch
from autogenv2.states import State
from autogenv2.status import JobStatus
from conftest import TINY_PLAN, autogenv2
from test_runner_pbs_live import PBS, SKIP_REASON, record
from test_slurm_ensemble import H2, assert_merged_estimate, dmc_running, finish, run_until

pytestmark = [pytest.mark.pbs, pytest.mark.slow, pytest.mark.skipif(not PBS, reason=SKIP_REASON)]

MACHINES = '[machines.pbs]\nkind = "pbs"\npartition = "workq"\n'
JOB_ID = re.compile(r"\d+\.\S+")


@pytest.fixture
def submitted(tmp_path: Path) -> Iterator[None]:
    """qdel every PBS job any status.json under tmp_path records, whatever happens."""
    yield
    ids = [a.runner_id for path in tmp_path.rglob("status.json") if (status := JobStatus.load(path.parent))
           for e in status.elements for a in e.attempts if a.runner_id]
    if ids:
        subprocess.run(["qdel", *ids], check=False, capture_output=True, timeout=60)


def pbs_plan(root: Path, steps: list[Step], job_id: str = "j") -> Plan:
    root.mkdir(parents=True, exist_ok=True)
    (root / "machines.toml").write_text(MACHINES)
    plan = Plan(root=root / "runs", jobs=[Job(id=job_id, steps=steps)], machines=root / "machines.toml")
    return plan.check()


def dmc_step_toml(nblocks: int) -> str:
    return f"""[[steps]]
name = "dmc"
code = "pyqmc"
method = "dmc"
runner = "pbs"
max_retries = 0
resources = {{ walltime = "00:01:00" }}
nconfig = 200
tstep = 0.02
nblocks = {nblocks}
warmup = 5
seed = 2
"""


DMC_BLOCKS = 1200
"""About 75 s of DMC on this shared 2-core machine (0.05-0.07 s/block measured): the first attempt,
stopped at 45 s, does 50-70 % of it."""


def run_cli_ensemble(base: Path, nblocks: int) -> JobStatus:
    """The tiny H2 plan with every step on the PBS profile and a 1-minute DMC of ``nblocks``, run
    by ``autogenv2 run --watch`` to its end."""
    head, _, _ = TINY_PLAN.partition('[[steps]]\nname = "dmc"')
    plan_text = head.replace('root = "runs"', 'root = "runs"\nmachines = "machines.toml"')
    for code in ("pyscf", "pyqmc"):
        plan_text = plan_text.replace(f'code = "{code}"', f'code = "{code}"\nrunner = "pbs"')
    base.mkdir(parents=True)
    (base / "plan.toml").write_text(plan_text + dmc_step_toml(nblocks) + '[[jobs]]\nid = "h2"\n')
    (base / "machines.toml").write_text(MACHINES)
    proc = autogenv2("run", str(base / "plan.toml"), "--watch", "--interval", "1", timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = JobStatus.load(base / "runs" / "h2")
    assert status is not None
    return status


def test_ensemble_via_cli_with_a_dmc_stopped_at_its_walltime(tmp_path: Path, submitted: None) -> None:
    """The tiny H2 ensemble, every step a PBS job; its DMC asks for 1 minute, is stopped by the
    wrapper before PBS's limit (PBS records the wrapper's exit 1, not -29) and continued. If the
    machine was so fast that the DMC ended in one attempt, run once more with the length that
    attempt's own speed calls for (said in the assertion messages)."""
    nblocks, base = DMC_BLOCKS, tmp_path / "first"
    status = run_cli_ensemble(base, nblocks)
    only = status.element("dmc").attempts
    if len(only) == 1 and only[0].verdict == "complete" and only[0].seconds:
        nblocks, base = int(nblocks * 120 / only[0].seconds), tmp_path / "retry"
        status = run_cli_ensemble(base, nblocks)
    note = f"(nblocks {nblocks}; retried with a longer DMC: {base.name == 'retry'})"
    assert [(e.name, e.state) for e in status.elements] == [
        ("scf", State.done), ("opt", State.done), ("vmc", State.done), ("dmc", State.done)], note
    for element in status.elements:
        for attempt in element.attempts:
            assert attempt.runner == "pbs" and JOB_ID.fullmatch(attempt.runner_id), attempt
            marker = base / "runs" / "h2" / element.name / ".autogenv2" / f"{attempt.token}.jobid"
            assert marker.read_text().strip() == attempt.runner_id
    dmc = status.element("dmc")
    print("\nattempts:", [(a.reason, a.blocks, round(a.seconds or 0, 1)) for a in dmc.attempts], note)
    first = dmc.attempts[0]
    assert len(dmc.attempts) >= 2, f"the first attempt was to be stopped at its walltime {note}"
    assert (first.reason, first.verdict, first.exit_code) == ("walltime", "incomplete", -15), (first, note)
    assert first.seconds is not None and first.seconds < 60 - 10, "stopped before PBS's limit"
    server = record(first.runner_id)
    assert server["Resource_List.walltime"] == "00:01:00" and server["Exit_status"] == "1", server
    blocks = [a.blocks for a in dmc.attempts]
    assert blocks == sorted(blocks) and 0 < blocks[0] < nblocks, (blocks, note)
    assert blocks[-1] == dmc.result["blocks"] >= nblocks, (blocks, note)  # more if a health fix asked
    assert_merged_estimate(base / "runs" / "h2" / "dmc", dmc.result, 5, nblocks, 200)
    assert status.element("scf").result["energy"] == pytest.approx(-1.1287094, abs=1e-6)


def test_qdel_behind_our_back_is_recorded_and_continued(tmp_path: Path, submitted: None) -> None:
    """qdel of a running DMC: reason "cancelled"; its blocks are progress, so the same run continues."""
    steps = [Step(name="scf", code="pyscf", method="rhf", options=H2, runner="pbs"),
             Step(name="dmc", code="pyqmc", method="dmc", runner="pbs", after="scf", max_retries=0,
                  options={"nconfig": 100, "nblocks": 1000, "tstep": 0.02, "warmup": 5, "seed": 3})]
    plan = pbs_plan(tmp_path, steps)  # ~35 s of DMC when the machine is idle
    victim = run_until(plan, dmc_running(plan.root / "j", 5)).element("dmc").attempts[-1]
    subprocess.run(["qdel", victim.runner_id], check=True, capture_output=True, timeout=60)
    after = run_until(plan, lambda s: s.element("dmc").attempts[0].phase == "finished", timeout=60)
    first = after.element("dmc").attempts[0]
    assert first.reason == "cancelled" and first.scheduler_state == "F", first
    assert record(first.runner_id)["substate"] == "91", "PBS deleted it"
    assert first.verdict == "incomplete" and (first.blocks or 0) > 0, first
    dmc = finish(plan).element("dmc")
    print("\nqdel:", [(a.reason, a.verdict, a.blocks) for a in dmc.attempts], dmc.result.get("energy"))
    assert dmc.state is State.done and len(dmc.attempts) >= 2
    assert dmc.attempts[0].blocks == first.blocks and dmc.attempts[-1].blocks == dmc.result["blocks"] >= 1000
    assert_merged_estimate(tmp_path / "runs" / "j" / "dmc", dmc.result, 5, 1000, 100)


def test_bundling_profile_packs_small_elements_into_one_pbs_job(tmp_path: Path, submitted: None) -> None:
    """A profile with bundle = 3: three jobs' toy runs share one PBS job, each judged by its own token."""
    (tmp_path / "machines.toml").write_text(MACHINES + "bundle = 3\n")
    jobs = [Job(id=f"b{i}", steps=[Step(name="mc", code="toy", method="mc", runner="pbs",
                                         options={"nblocks": 20, "seconds_per_block": 0.0, "seed": i})])
            for i in range(3)]
    plan = Plan(root=tmp_path / "runs", jobs=jobs, machines=tmp_path / "machines.toml").check()
    first = reconcile(plan)
    assert any("bundled 3 attempts into pbs job" in a for a in first.actions), first.actions
    started = time.time()
    watch(plan, interval=1.0, on_pass=lambda report: None, max_passes=120)
    loaded = [JobStatus.load(tmp_path / "runs" / f"b{i}") for i in range(3)]
    elements = [status.element("mc") for status in loaded if status is not None]
    assert len(elements) == 3
    ids = {e.attempts[0].runner_id for e in elements}  # (a run whose error bar is not trusted is doubled)
    assert len(ids) == 1 and JOB_ID.fullmatch(next(iter(ids))), ids
    for i, element in enumerate(elements):
        assert element.state is State.done and element.result["blocks"] >= 20, element.reason
        assert (element.attempts[0].verdict, element.attempts[0].blocks) == ("complete", 20)
        exit_file = tmp_path / "runs" / f"b{i}" / "mc" / ".autogenv2" / f"{element.attempts[0].token}.exit"
        assert json.loads(exit_file.read_text())["exit_code"] == 0
    server = record(next(iter(ids)))
    assert server["Job_Name"] in {e.attempts[0].token for e in elements}, server["Job_Name"]
    assert time.time() - started < 120
