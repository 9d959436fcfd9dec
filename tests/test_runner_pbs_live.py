"""PbsRunner against the live one-node OpenPBS 23.06 server (pbs-localhost.sh, started by .ci/run).

Every job submitted here is qdel'ed by the ``jobs`` fixture's finalizer. The node has 2 cpus, so at
most two of these jobs run at once; the others wait in the queue like on any cluster.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from autogenv2.errors import RunnerError
from autogenv2.runners import get_runner
from autogenv2.runners.base import Resources, RunRequest, RunStatus, read_markers
from autogenv2.runners.pbs import WALLTIME_KILL, PbsRunner, parse_qstat
from autogenv2.runners.script import LOST


def _pbs_answers() -> bool:
    if shutil.which("qsub") is None or shutil.which("qstat") is None:
        return False
    try:
        return subprocess.run(["qstat", "-B"], check=False, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


PBS = _pbs_answers()
SKIP_REASON = "qsub/qstat not on PATH or the PBS server does not answer qstat -B"
pytestmark = [pytest.mark.pbs, pytest.mark.skipif(not PBS, reason=SKIP_REASON)]
SLEEPER = "import time; print('ready', flush=True); time.sleep(600)"


@pytest.fixture
def jobs():  # type: ignore[no-untyped-def]
    """Job ids to qdel at the end, whatever happens (finished ones are not an error). Not ``-W force``:
    a job SIGKILLed while its login shell runs ``pyenv rehash`` (root's .bashrc here) leaves a stale
    lock that delays every later job on this machine by 60 s."""
    ids: list[str] = []
    yield ids
    if ids:
        subprocess.run(["qdel", *ids], check=False, capture_output=True, timeout=60)


def token() -> str:
    return f"ag2t-{uuid.uuid4().hex[:10]}"


def request(directory: Path, code: str, **resources: object) -> RunRequest:
    directory.mkdir(parents=True, exist_ok=True)
    return RunRequest(directory=directory, argv=[sys.executable, "-c", code], token=token(),
                      resources=Resources(**resources))


def wait(runner: PbsRunner, attempts: dict[str, tuple[str, Path]], phases: set[str],
         timeout: float = 90) -> dict[str, RunStatus]:
    """Poll until every attempt is in one of ``phases``; return the last statuses."""
    deadline = time.time() + timeout
    while True:
        statuses = runner.poll(attempts)
        if all(s.phase in phases for s in statuses.values()) or time.time() > deadline:
            return statuses
        time.sleep(0.5)


def wait_for(check, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.3)


def ready(req: RunRequest) -> bool:
    path = req.directory / "stdout.txt"
    return path.exists() and "ready" in path.read_text()


def record(job_id: str) -> dict[str, str]:
    """The server's own ``qstat -f -x`` record of one job."""
    done = subprocess.run(["qstat", "-f", "-x", job_id], check=False, capture_output=True, text=True,
                          timeout=60)
    return parse_qstat(done.stdout).get(job_id, {})


def test_exit_code_resources_and_names_reach_the_server(tmp_path, jobs):
    runner = get_runner("pbs")
    code = "import sys; print('args', sys.argv[1:]); raise SystemExit(3)"
    req = request(tmp_path / "run", code, walltime="00:02:00", tasks=1, memory="200M", partition="workq",
                  account="proj1", extra=["-l place=scatter"])
    req.argv += ["$(touch pwned)", "a b", "'q'; exit 0"]
    jobs.append(runner_id := runner.start(req))
    assert re.fullmatch(r"\d+\.\S+", runner_id), runner_id
    status = wait(runner, {req.token: (runner_id, req.directory)}, {"finished"})[req.token]
    assert (status.phase, status.exit_code, status.reason) == ("finished", 3, "")
    assert status.extra["runner_id"] == runner_id and status.scheduler_state in ("R", "E", "F")
    output = (req.directory / "stdout.txt").read_text()
    assert "args ['$(touch pwned)', 'a b', \"'q'; exit 0\"]" in output
    assert not (req.directory / "pwned").exists()
    server = final(runner_id)
    assert server["Exit_status"] == "1", "the wrapper's own exit code: the program failed"
    assert (server["Job_Name"], server["queue"], server["Account_Name"]) == (req.token, "workq", "proj1")
    assert server["Resource_List.select"] == "1:ncpus=1:mpiprocs=1:mem=200mb"
    assert server["Resource_List.walltime"] == "00:02:00" and server["Resource_List.place"] == "scatter"
    assert server["Output_Path"].endswith(f"{req.directory.resolve()}/.autogenv2/{req.token}.pbs.out")
    assert (req.directory / ".autogenv2" / f"{req.token}.jobid").read_text().strip() == runner_id


def final(job_id: str, timeout: float = 60) -> dict[str, str]:
    """The job's record once PBS has moved it to its history (state F)."""
    wait_for(lambda: record(job_id).get("job_state") == "F", f"job {job_id} in qstat -x history", timeout)
    return record(job_id)


def _walltime_pair(runner: PbsRunner, tmp_path: Path, jobs: list[str],
                   limit: int) -> tuple[dict[str, RunStatus], list[RunRequest], list[str]]:
    """One job whose walltime the wrapper knows (it stops the program first) and one whose limit
    only PBS knows (``-l walltime`` as an extra directive), run at once."""
    ours = request(tmp_path / f"ours{limit}", SLEEPER, walltime=str(2 * limit))
    pbs = request(tmp_path / f"pbs{limit}", SLEEPER, extra=[f"-l walltime={limit}"])
    jobs.extend(ids := [runner.start(ours), runner.start(pbs)])
    attempts = {ours.token: (ids[0], ours.directory), pbs.token: (ids[1], pbs.directory)}
    return wait(runner, attempts, {"finished", "lost"}, timeout=4 * limit + 60), [ours, pbs], ids


@pytest.mark.slow
def test_walltime_kills_by_the_wrapper_and_by_pbs(tmp_path, jobs):
    """PBS's own kill is Exit_status -29 plus "job killed: walltime" in the job's output; both mean
    walltime, also after the server has purged the job. Retried once with a doubled limit if the
    loaded machine started the wrapper too late to stop its program before PBS did."""
    runner = PbsRunner()
    for limit in (15, 30):
        statuses, (ours, pbs), ids = _walltime_pair(runner, tmp_path, jobs, limit)
        if final(ids[0]).get("Exit_status") != "-29":
            break
    note = f"(walltime {2 * limit} s for the wrapper's job, {limit} s for PBS's; retried: {limit != 15})"
    mine, theirs = statuses[ours.token], statuses[pbs.token]
    assert (mine.phase, mine.reason, mine.exit_code) == ("finished", "walltime", -15), (mine, note)
    assert record(ids[0])["Exit_status"] == "1", f"the wrapper, not PBS, ended it {note}"
    assert (theirs.phase, theirs.reason, theirs.exit_code) == ("finished", "walltime", -15), (theirs, note)
    assert theirs.scheduler_state == "F"
    server = final(ids[1])
    assert server["Exit_status"] == "-29" and server["comment"].endswith("exceeded resource walltime")
    log = (pbs.directory / ".autogenv2" / f"{pbs.token}.pbs.out").read_text()
    assert re.search(rf"{WALLTIME_KILL} \d+ exceeded limit {limit}", log), log
    subprocess.run(["qdel", "-x", ids[1]], check=True, capture_output=True, timeout=60)  # purge it
    assert record(ids[1]) == {}
    forgotten = runner.poll({pbs.token: (ids[1], pbs.directory)})[pbs.token]
    assert (forgotten.phase, forgotten.reason, forgotten.scheduler_state) == ("finished", "walltime", "")


def test_qdel_of_running_and_held_jobs_is_cancelled(tmp_path, jobs):
    runner = PbsRunner()
    running = request(tmp_path / "a", SLEEPER)
    held = request(tmp_path / "b", "print('never')", extra=["-h"])
    jobs.extend(ids := [runner.start(running), runner.start(held)])
    wait_for(lambda: ready(running), "the running job's program")
    subprocess.run(["qdel", *ids], check=True, capture_output=True, timeout=60)
    attempts = {running.token: (ids[0], running.directory), held.token: (ids[1], held.directory)}
    statuses = wait(runner, attempts, {"finished", "lost"}, timeout=60)
    assert (statuses[running.token].phase, statuses[running.token].reason) == ("finished", "cancelled")
    markers = read_markers(running.directory, running.token)  # PBS's SIGTERM reached the wrapper
    assert markers is not None and markers.exit_code == -15 and markers.reason == "terminated"
    assert statuses[running.token].exit_code == -15
    assert (statuses[held.token].phase, statuses[held.token].reason) == ("finished", "cancelled")
    assert statuses[held.token].exit_code is None and statuses[held.token].scheduler_state == "F"
    assert [final(i)["substate"] for i in ids] == ["91", "91"]  # PBS's "deleted"
    assert "Exit_status" not in record(ids[1]), "a job deleted before it ran has no exit status"


def test_cancel_stops_a_running_job_and_tolerates_finished_or_purged_ones(tmp_path, jobs):
    runner = PbsRunner()
    req = request(tmp_path / "run", SLEEPER)
    jobs.append(runner_id := runner.start(req))
    wait_for(lambda: ready(req), "the job's program")
    runner.cancel(runner_id)
    attempts = {req.token: (runner_id, req.directory)}
    status = wait(runner, attempts, {"finished", "lost"}, timeout=60)[req.token]
    assert (status.phase, status.reason, status.exit_code) == ("finished", "cancelled", -15)
    runner.cancel(runner_id)  # "qdel: Job has finished": not an error
    subprocess.run(["qdel", "-x", runner_id], check=True, capture_output=True, timeout=60)
    runner.cancel(runner_id)  # "qdel: Unknown Job Id": not an error either


def test_held_jobs_qhold_and_qrls(tmp_path, jobs):
    """A job held at submission has no comment; qhold writes one; the scheduler's own pending
    reason ("Can Never Run: ...") comes through too; qrls lets a held job run to its end."""
    runner = PbsRunner()
    held = request(tmp_path / "held", "print('released'); raise SystemExit(6)", extra=["-h"])
    never = request(tmp_path / "never", "print('never')", extra=["-l select=1:ncpus=3"])
    jobs.extend(ids := [runner.start(held), runner.start(never)])
    attempts = {held.token: (ids[0], held.directory), never.token: (ids[1], never.directory)}
    first = runner.poll(attempts)
    assert (first[held.token].phase, first[held.token].reason) == ("queued", "held (Hold_Types=u)")
    assert first[held.token].scheduler_state == "H"

    def pending_reason() -> bool:
        return runner.poll(attempts)[never.token].reason.startswith("Can Never Run: Insufficient")
    wait_for(pending_reason, "the scheduler's comment", timeout=40)
    subprocess.run(["qhold", ids[1]], check=True, capture_output=True, timeout=60)
    status = runner.poll(attempts)[never.token]
    assert (status.phase, status.scheduler_state) == ("queued", "H")
    assert status.reason.startswith("Job held by root on"), status.reason
    subprocess.run(["qrls", *ids], check=True, capture_output=True, timeout=60)
    assert runner.poll(attempts)[never.token].scheduler_state == "Q"
    done = wait(runner, {held.token: attempts[held.token]}, {"finished", "lost"})[held.token]
    assert (done.phase, done.exit_code, done.reason) == ("finished", 6, "")
    assert (held.directory / "stdout.txt").read_text().strip() == "released"


def test_history_purged_and_never_submitted_jobs(tmp_path, jobs):
    """qstat -x keeps a finished job; once purged (qdel -x) the exit file alone decides; a token
    PBS never saw, with or without a job id, is lost."""
    runner = PbsRunner()
    req = request(tmp_path / "run", "raise SystemExit(5)")
    jobs.append(runner_id := runner.start(req))
    attempts = {req.token: (runner_id, req.directory)}
    wait_for(lambda: runner.poll(attempts)[req.token].scheduler_state == "F", "qstat -x history")
    status = runner.poll(attempts)[req.token]
    assert (status.phase, status.exit_code, status.extra["runner_id"]) == ("finished", 5, runner_id)
    subprocess.run(["qdel", "-x", runner_id], check=True, capture_output=True, timeout=60)
    assert record(runner_id) == {}
    purged = runner.poll({req.token: (runner_id, req.directory)})[req.token]
    assert (purged.phase, purged.exit_code, purged.scheduler_state, purged.extra) == ("finished", 5, "", {})
    unknown_id = f"{int(runner_id.split('.')[0]) + 500000}.{runner_id.split('.', 1)[1]}"
    nobody = runner.poll({token(): (unknown_id, tmp_path), token(): ("", tmp_path)})
    assert [(s.phase, s.reason) for s in nobody.values()] == [("lost", LOST)] * 2


def test_unrecorded_submission_is_found_by_token(tmp_path, jobs):
    runner = PbsRunner()
    req = request(tmp_path / "run", "print('never')", extra=["-h"])
    jobs.append(runner_id := runner.start(req))
    status = runner.poll({req.token: ("", req.directory)})[req.token]
    assert status.phase == "queued" and status.extra["runner_id"] == runner_id


def test_bundle_runs_each_request_under_its_own_token(tmp_path, jobs):
    runner = PbsRunner()
    requests = [request(tmp_path / f"r{i}", f"print('task {i}'); raise SystemExit({i})", walltime="60")
                for i in range(3)]
    jobs.append(runner_id := runner.start_bundle(requests))
    attempts = {r.token: (runner_id, r.directory) for r in requests}
    statuses = wait(runner, attempts, {"finished", "lost"})
    assert [statuses[r.token].exit_code for r in requests] == [0, 1, 2]
    for i, r in enumerate(requests):
        assert (r.directory / "stdout.txt").read_text().strip() == f"task {i}"
    server = final(runner_id)
    assert server["Job_Name"] == requests[0].token and server["Resource_List.walltime"] == "00:03:00"
    found = runner.poll({requests[1].token: ("", requests[1].directory)})[requests[1].token]
    assert found.extra["runner_id"] == runner_id and found.exit_code == 1


def test_one_qstat_per_poll_for_1_10_100_tokens(tmp_path, jobs, monkeypatch):
    """A PATH shim logs every PBS command and execs the real one."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    for command in ("qstat", "qsub", "qdel"):
        real = shutil.which(command)
        (bin_dir / command).write_text(f'#!/bin/sh\necho "{command} $*" >> {calls}\nexec {real} "$@"\n')
        (bin_dir / command).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    runner, attempts = PbsRunner(), {}
    for i in range(100):
        req = request(tmp_path / f"r{i}", "print('never')", extra=["-h"])
        jobs.append(runner_id := runner.start(req))
        attempts[req.token] = (runner_id, req.directory)
    assert calls.read_text().splitlines() == ["qsub -f"] * 100
    tokens = list(attempts)
    for count in (1, 10, 100):
        calls.write_text("")
        statuses = runner.poll({t: attempts[t] for t in tokens[:count]})
        lines = calls.read_text().splitlines()
        assert len(lines) == 1 and lines[0].startswith("qstat -f -x "), lines
        assert {(s.phase, s.reason) for s in statuses.values()} == {("queued", "held (Hold_Types=u)")}
        assert len(statuses) == count


def test_job_that_never_reached_the_wrapper_is_failed_with_its_exit_code(tmp_path, jobs):
    runner = PbsRunner(python=str(tmp_path / "no-such-python"))
    req = request(tmp_path / "run", "print('never')")
    jobs.append(runner_id := runner.start(req))
    status = wait(runner, {req.token: (runner_id, req.directory)}, {"finished", "lost"})[req.token]
    assert (status.phase, status.exit_code, status.reason) == ("finished", 127, "failed")
    assert status.scheduler_state == "F"


def test_qsub_refusal_is_a_runner_error(tmp_path):
    with pytest.raises(RunnerError, match="Unknown queue"):
        PbsRunner().start(request(tmp_path / "run", "pass", partition="no_such_queue"))
