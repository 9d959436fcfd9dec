"""PbsRunner on recorded qsub/qstat/qdel text (tests/data/pbs): text written from the PBS Pro and
Torque documentation (Torque has no live server here), and ``qstat -f -x`` captured from the live
OpenPBS 23.06 server (qstat_openpbs2306_live.txt). The runner against that live server is tested in
tests/test_runner_pbs_live.py and tests/test_pbs_ensemble.py. Stand-in ``qsub``/``qstat``/``qdel``
scripts placed first on PATH replay the text and log their arguments; the job scripts qsub receives
are run for real with bash, and the marker files come from the real launch wrapper.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autogenv2.errors import PlanError, RunnerError
from autogenv2.runners import get_runner
from autogenv2.runners.base import Resources, RunRequest, read_markers
from autogenv2.runners.pbs import PbsRunner, parse_qstat
from autogenv2.runners.script import LOST

DATA = Path(__file__).parent / "data" / "pbs"


@pytest.fixture
def pbs(tmp_path, monkeypatch):
    """Install stand-in PBS commands; ``pbs(name, stdout=..., stderr=..., code=...)`` (re)defines one."""
    bin_dir, data = tmp_path / "bin", tmp_path / "data"
    bin_dir.mkdir()
    shutil.copytree(DATA, data)
    calls = tmp_path / "calls.txt"
    calls.write_text("")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")

    def define(name: str, stdout: str = "", stderr: str = "", code: int = 0) -> Path:
        body = [f'echo "{name} $*" >> {calls}']
        if name == "qsub":
            body.append(f"cat > {tmp_path / 'submitted.sh'}")
        body += [f"grep -v '^#' {data / stdout}" if stdout else ":",
                 f"grep -v '^#' {data / stderr} >&2" if stderr else ":", f"exit {code}"]
        (bin_dir / name).write_text("#!/bin/sh\n" + "\n".join(body) + "\n")
        (bin_dir / name).chmod(0o755)
        return calls

    define("qstat", stdout="qstat_pbspro.txt")
    define("qsub", stdout="qsub.txt")
    define("qdel")
    return define


def calls_of(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls.txt").read_text().splitlines()


def test_parse_qstat_joins_continuation_lines():
    jobs = parse_qstat((DATA / "qstat_pbspro.txt").read_text())
    assert len(jobs) == 11 and next(iter(jobs)) == "4701.pbs-server"
    queued = jobs["4701.pbs-server"]
    assert queued["comment"] == "Not Running: Insufficient amount of resource: ncpus (R: 4 A: 0 T: 128)"
    assert queued["Variable_List"].endswith("PBS_O_QUEUE=workq,PBS_O_HOST=login1.cluster")
    assert jobs["4705.pbs-server"]["Exit_status"] == "-29"
    assert jobs["4711.pbs-server"]["Job_Name"] == "ag2-b1,ag2-b2"


EXPECTED_PBSPRO = {  # token: (job id, phase, exit code, reason)
    "ag2-queued": ("4701", "queued", None,
                   "Not Running: Insufficient amount of resource: ncpus (R: 4 A: 0 T: 128)"),
    "ag2-held": ("4702", "queued", None, "Job held by alice on Wed Nov 19 09:12:05 2025"),
    "ag2-running": ("4703", "running", None, ""),
    "ag2-done-ok": ("4704", "finished", 0, "no exit file"),
    "ag2-walltime": ("4705", "finished", None, "walltime"),
    "ag2-deleted-running": ("4706", "finished", -15, "cancelled"),
    "ag2-deleted-queued": ("4707", "finished", None, "cancelled"),
    "ag2-mem": ("4708", "finished", None, "oom"),
    "ag2-nopython": ("4709", "finished", 127, "failed"),
    "ag2-killed-at-limit": ("4710", "finished", -15, "walltime"),
    "ag2-b1": ("4711", "running", None, ""),
    "ag2-b2": ("4711", "running", None, ""),
    "ag2-forgotten": ("4799", "lost", None, LOST),
}


def test_poll_maps_every_recorded_state_with_one_qstat(tmp_path, pbs):
    attempts = {token: (f"{job}.pbs-server", tmp_path / token)
                for token, (job, *_) in EXPECTED_PBSPRO.items()}
    statuses = PbsRunner().poll(attempts)
    got = {token: (s.phase, s.exit_code, s.reason) for token, s in statuses.items()}
    assert got == {token: tuple(rest) for token, (_, *rest) in EXPECTED_PBSPRO.items()}
    assert statuses["ag2-held"].scheduler_state == "H"
    assert statuses["ag2-b2"].extra["runner_id"] == "4711.pbs-server"
    ids = sorted({f"{job}.pbs-server" for job, *_ in EXPECTED_PBSPRO.values()})
    assert calls_of(tmp_path) == [f"qstat -f -x {' '.join(ids)}"]


@pytest.mark.parametrize("count", [1, 10, 100])
def test_one_qstat_per_poll_whatever_the_number_of_tokens(tmp_path, pbs, count):
    jobs = [f"{4701 + i % 11}.pbs-server" for i in range(count)]
    statuses = PbsRunner().poll({f"ag2-t{i}": (job, tmp_path) for i, job in enumerate(jobs)})
    assert len(statuses) == count and len(calls_of(tmp_path)) == 1
    assert statuses["ag2-t0"].phase == "queued"


def run_wrappers(runs: list[tuple[Path, str, str, bool]]) -> None:
    """Leave real marker files: run the launch wrapper for each (directory, token, code, terminate),
    all at once, sending SIGTERM to those marked once their program runs."""
    procs = []
    for directory, token, code, _ in runs:
        directory.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "autogenv2.runners.launch", token, "--", sys.executable, "-c", code]
        procs.append(subprocess.Popen(argv, cwd=directory))
    for proc, (directory, token, _, terminate) in zip(procs, runs, strict=True):
        if terminate:
            while read_markers(directory, token) is None:
                time.sleep(0.05)
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=30)


def test_markers_decide_and_the_scheduler_says_who_signalled(tmp_path, pbs):
    sleeper = "import time; time.sleep(30)"
    run_wrappers([(tmp_path / "ok", "ag2-done-ok", "raise SystemExit(3)", False),
                  (tmp_path / "del", "ag2-deleted-running", sleeper, True),
                  (tmp_path / "run", "ag2-running", sleeper, True)])
    statuses = PbsRunner().poll({"ag2-done-ok": ("4704.pbs-server", tmp_path / "ok"),
                                 "ag2-deleted-running": ("4706.pbs-server", tmp_path / "del"),
                                 "ag2-running": ("4703.pbs-server", tmp_path / "run")})
    assert (statuses["ag2-done-ok"].phase, statuses["ag2-done-ok"].exit_code) == ("finished", 3)
    deleted = statuses["ag2-deleted-running"]
    assert (deleted.reason, deleted.exit_code) == ("cancelled", -15)
    assert statuses["ag2-running"].phase == "running"  # terminated, but PBS has not said why yet


def test_unrecorded_ids_are_found_by_name_or_by_the_scripts_marker(tmp_path, pbs):
    status = PbsRunner().poll({"ag2-queued": ("", tmp_path / "q")})["ag2-queued"]
    assert status.phase == "queued" and status.extra["runner_id"] == "4701.pbs-server"
    assert calls_of(tmp_path) == ["qstat -f -x"]  # an unknown id: list every job once
    (tmp_path / "r" / ".autogenv2").mkdir(parents=True)
    (tmp_path / "r" / ".autogenv2" / "ag2-running.jobid").write_text("4703.pbs-server\n")
    status = PbsRunner().poll({"ag2-running": ("", tmp_path / "r")})["ag2-running"]
    assert status.phase == "running" and calls_of(tmp_path)[-1] == "qstat -f -x 4703.pbs-server"


def test_torque_flavor(tmp_path, pbs):
    pbs("qstat", stdout="qstat_torque.txt")
    runner = get_runner("pbs", flavor="torque")
    expected = {"ag2-t-queued": ("812", "queued", None), "ag2-t-running": ("813", "running", None),
                "ag2-t-ok": ("814", "finished", 0), "ag2-t-walltime": ("815", "finished", None),
                "ag2-t-qdel": ("816", "finished", -15)}
    statuses = runner.poll({t: (f"{job}.torque-head.cluster", tmp_path) for t, (job, *_) in expected.items()})
    got = {t: (s.phase, s.exit_code) for t, s in statuses.items()}
    assert got == {t: tuple(v[1:]) for t, v in expected.items()}
    assert [statuses[t].reason for t in ("ag2-t-walltime", "ag2-t-qdel")] == ["walltime", "cancelled"]
    assert calls_of(tmp_path)[0].startswith("qstat -f 812.") and "-x" not in calls_of(tmp_path)[0]


def test_unknown_job_on_stderr_is_not_an_error_but_others_are(tmp_path, pbs):
    pbs("qstat", stdout="qstat_pbspro.txt", stderr="qstat_unknown_stderr.txt", code=153)
    statuses = PbsRunner().poll({"ag2-forgotten": ("4799.pbs-server", tmp_path),
                                 "ag2-held": ("4702.pbs-server", tmp_path)})
    assert (statuses["ag2-forgotten"].phase, statuses["ag2-held"].phase) == ("lost", "queued")
    pbs("qstat", stderr="qdel_stderr.txt", code=159)
    with pytest.raises(RunnerError, match="Unauthorized Request"):
        PbsRunner().poll({"ag2-held": ("4702.pbs-server", tmp_path)})


def test_start_submits_a_script_that_really_runs(tmp_path, pbs):
    run_dir = tmp_path / "run"
    req = RunRequest(directory=run_dir, argv=[sys.executable, "-c", "print('hi'); raise SystemExit(4)"],
                     token="ag2-x", resources=Resources(
                         nodes=2, tasks=8, cpus_per_task=2, memory="4G", walltime="1-02:00:30",
                         partition="workq", account="proj1", extra=["-l place=scatter"]))
    assert PbsRunner().start(req) == "4712.pbs-server"
    script = (tmp_path / "submitted.sh").read_text()
    root = run_dir.resolve()
    assert script.splitlines()[1:10] == [
        "#PBS -N ag2-x", "#PBS -j oe", f"#PBS -o {root}/.autogenv2/ag2-x.pbs.out", "#PBS -S /bin/bash",
        "#PBS -l select=2:ncpus=8:mpiprocs=4:mem=4gb", "#PBS -l walltime=26:00:30", "#PBS -q workq",
        "#PBS -A proj1", "#PBS -l place=scatter"]
    done = subprocess.run(["bash", str(tmp_path / "submitted.sh")], check=False, cwd=tmp_path, timeout=60,
                          env={**os.environ, "PBS_JOBID": "4712.pbs-server"})
    assert done.returncode == 1  # the wrapper's: the program failed
    assert read_markers(run_dir, "ag2-x").exit_code == 4
    assert (run_dir / "stdout.txt").read_text().strip() == "hi"
    assert (run_dir / ".autogenv2" / "ag2-x.jobid").read_text().strip() == "4712.pbs-server"


def test_bundle_script_runs_each_request(tmp_path, pbs):
    reqs = [RunRequest(directory=tmp_path / f"r{i}", argv=[sys.executable, "-c", f"raise SystemExit({i})"],
                       token=f"ag2-b{i}") for i in (1, 2)]
    PbsRunner(flavor="torque").start_bundle(reqs)
    script = (tmp_path / "submitted.sh").read_text()
    assert "#PBS -N ag2-b1" in script and "exec " not in script
    assert "#PBS -v AG2_TOKENS=ag2-b1:ag2-b2" in script  # OpenPBS refuses commas in job names
    subprocess.run(["bash", str(tmp_path / "submitted.sh")], check=False,
                   env={**os.environ, "PBS_JOBID": "9.t"}, timeout=60)
    assert [read_markers(r.directory, r.token).exit_code for r in reqs] == [1, 2]


def test_torque_resources_and_refusals(tmp_path, pbs):
    req = RunRequest(directory=tmp_path, argv=["x"], token="ag2-y",
                     resources=Resources(nodes=2, tasks=8, memory="4G", walltime="90"))
    PbsRunner(flavor="torque").start(req)
    lines = (tmp_path / "submitted.sh").read_text().splitlines()
    assert {"#PBS -l nodes=2:ppn=4", "#PBS -l mem=8gb", "#PBS -l walltime=00:01:30"} <= set(lines)
    with pytest.raises(PlanError, match="resources.qos"):
        PbsRunner().start(RunRequest(directory=tmp_path, argv=["x"], token="ag2-z",
                                     resources=Resources(qos="hi")))
    with pytest.raises(PlanError, match="resources.extra"):
        PbsRunner().start(RunRequest(directory=tmp_path, argv=["x"], token="ag2-z",
                                     resources=Resources(extra=["-o /etc/passwd"])))
    with pytest.raises(PlanError, match="flavor"):
        PbsRunner(flavor="lsf")


def test_qsub_and_qdel_failures(tmp_path, pbs):
    pbs("qsub", stderr="qsub_error_stderr.txt", code=170)
    with pytest.raises(RunnerError, match="Unknown queue"):
        PbsRunner().start(RunRequest(directory=tmp_path, argv=["x"], token="ag2-q"))
    pbs("qdel", stderr="qsub.txt", code=0)  # success, whatever it prints
    PbsRunner().cancel("4703.pbs-server")
    (tmp_path / "data" / "finished.txt").write_text("qdel: Job 4704.pbs-server has finished\n")
    pbs("qdel", stderr="finished.txt", code=35)
    PbsRunner().cancel("4704.pbs-server")  # already finished: not an error
    pbs("qdel", stderr="qdel_stderr.txt", code=159)
    with pytest.raises(RunnerError, match="Unauthorized"):
        PbsRunner().cancel("4703.pbs-server")
    assert calls_of(tmp_path)[-1] == "qdel 4703.pbs-server"


EXPECTED_OPENPBS_LIVE = {  # token: (job id, phase, exit code, reason), no exit files: qstat alone
    "ag2-live-ok": ("131", "finished", 0, "no exit file"),
    "ag2-live-exit3": ("132", "finished", 1, "failed"),  # the wrapper's exit code
    "ag2-live-nopython": ("133", "finished", 127, "failed"),
    "ag2-live-b0": ("134", "finished", 1, "failed"),  # a bundle ends with its last request's code
    "ag2-live-b1": ("134", "finished", 1, "failed"),
    "ag2-live-walltime": ("135", "finished", None, "walltime"),
    "ag2-live-delrun": ("136", "finished", None, "cancelled"),
    "ag2-live-held": ("137", "queued", None, "held (Hold_Types=u)"),
    "ag2-live-delheld": ("138", "finished", None, "cancelled"),
    "ag2-live-never": ("139", "queued", None,
                       "Can Never Run: Insufficient amount of resource: ncpus (R: 3 A: 2 T: 2)"),
    "ag2-live-qhold": ("140", "queued", None, "Job held by root on Wed Dec  2 03:44:53 2026"),
    "ag2-live-running": ("141", "running", None, ""),
}


def test_live_openpbs_2306_text_maps_every_state(tmp_path, pbs):
    """``qstat -f -x`` captured from the live OpenPBS 23.06 server (see the file's header)."""
    pbs("qstat", stdout="qstat_openpbs2306_live.txt")
    jobs = parse_qstat((DATA / "qstat_openpbs2306_live.txt").read_text())
    assert jobs["135.vm"]["comment"].endswith("and exceeded resource walltime")
    assert "AG2_TOKENS=ag2-live-b0:ag2-live-b1," in jobs["134.vm"]["Variable_List"]
    statuses = PbsRunner().poll({token: (f"{job}.vm", tmp_path / token)
                                 for token, (job, *_) in EXPECTED_OPENPBS_LIVE.items()})
    got = {token: (s.phase, s.exit_code, s.reason) for token, s in statuses.items()}
    assert got == {token: tuple(rest) for token, (_, *rest) in EXPECTED_OPENPBS_LIVE.items()}
    assert len(calls_of(tmp_path)) == 1
    unrecorded = PbsRunner().poll({"ag2-live-b1": ("", tmp_path), "ag2-live-running": ("", tmp_path)})
    assert {s.extra["runner_id"] for s in unrecorded.values()} == {"134.vm", "141.vm"}  # by AG2_TOKENS
    assert calls_of(tmp_path)[-1] == "qstat -f -x"
