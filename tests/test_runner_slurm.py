"""SlurmRunner against the real one-node SLURM cluster (slurm-localhost.sh, started by .ci/run).

Every job submitted here is scancel'ed by the ``jobs`` fixture's finalizer. The script
rendering and validation tests at the end need no SLURM.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from autogenv2.errors import PlanError, RunnerError
from autogenv2.runners import get_runner
from autogenv2.runners.base import Resources, RunRequest, RunStatus, read_markers
from autogenv2.runners.script import render, wrapper_request
from autogenv2.runners.slurm import SlurmRunner, directives as slurm_directives


def _slurm_answers() -> bool:
    if shutil.which("squeue") is None or shutil.which("sbatch") is None:
        return False
    try:
        return subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


SLURM = _slurm_answers()


def needs_slurm(test):  # type: ignore[no-untyped-def]
    reason = "squeue/sbatch not on PATH or the SLURM controller does not answer"
    test = pytest.mark.skipif(not SLURM, reason=reason)(test)
    return pytest.mark.slurm(test)


@pytest.fixture
def jobs():  # type: ignore[no-untyped-def]
    """Job ids to scancel at the end, whatever happens."""
    ids: list[str] = []
    yield ids
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=60)


def token() -> str:
    return f"ag2t-{uuid.uuid4().hex[:10]}"


def request(directory: Path, code: str, **resources: object) -> RunRequest:
    directory.mkdir(parents=True, exist_ok=True)
    return RunRequest(directory=directory, argv=[sys.executable, "-c", code], token=token(),
                      resources=Resources(**resources))


def wait(runner: SlurmRunner, attempts: dict[str, tuple[str, Path]], phases: set[str], timeout: float = 90):
    """Poll until every attempt is in one of ``phases``; return the last statuses."""
    deadline = time.time() + timeout
    while True:
        statuses = runner.poll(attempts)
        if all(s.phase in phases for s in statuses.values()) or time.time() > deadline:
            return statuses
        time.sleep(0.5)


def wait_for_text(path: Path, text: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared in {path}")


@needs_slurm
def test_exit_code_comes_from_the_marker_and_argv_is_not_shell_parsed(tmp_path, jobs):
    runner = get_runner("slurm")
    code = "import sys; print('args', sys.argv[1:]); raise SystemExit(3)"
    req = request(tmp_path / "run", code, walltime="00:02:00")
    req.argv += ["$(touch pwned)", "a b", "'q'; exit 0"]
    jobs.append(runner_id := runner.start(req))
    assert runner_id.isdigit()
    status = wait(runner, {req.token: (runner_id, req.directory)}, {"finished"})[req.token]
    assert (status.phase, status.exit_code, status.reason) == ("finished", 3, "")
    assert status.extra["runner_id"] == runner_id
    assert status.scheduler_state in ("FAILED", "COMPLETING", "RUNNING")
    output = (req.directory / "stdout.txt").read_text()
    assert "args ['$(touch pwned)', 'a b', \"'q'; exit 0\"]" in output
    assert not (req.directory / "pwned").exists()


@needs_slurm
@pytest.mark.slow
def test_walltime_kill_reports_walltime(tmp_path, jobs):
    """Two jobs at once: one stopped by the wrapper just before its walltime (the usual case), one
    whose limit only SLURM knows (``--time`` as an extra directive), killed by SLURM → TIMEOUT."""
    runner = SlurmRunner()
    sleeper = "import time; print('sleeping', flush=True); time.sleep(600)"
    ours = request(tmp_path / "ours", sleeper, walltime="00:01:00")
    slurms = request(tmp_path / "slurm", sleeper, extra=["--time=1"])
    started = time.time()
    jobs.extend(ids := [runner.start(ours), runner.start(slurms)])
    attempts = {ours.token: (ids[0], ours.directory), slurms.token: (ids[1], slurms.directory)}
    statuses = wait(runner, attempts, {"finished", "lost"}, timeout=150)
    assert (statuses[ours.token].phase, statuses[ours.token].reason) == ("finished", "walltime")
    assert statuses[ours.token].exit_code == -15  # the wrapper's SIGTERM, before SLURM's own limit
    assert statuses[ours.token].ended_at - statuses[ours.token].started_at < 50
    assert (statuses[slurms.token].phase, statuses[slurms.token].reason) == ("finished", "walltime")
    assert statuses[slurms.token].scheduler_state == "TIMEOUT"
    assert time.time() - started < 150


@needs_slurm
def test_jobs_scancelled_behind_our_back_are_cancelled(tmp_path, jobs):
    runner = SlurmRunner()
    running = request(tmp_path / "a", "import time; print('ready', flush=True); time.sleep(600)")
    held = request(tmp_path / "b", "print('never')", extra=["--hold"])
    jobs.extend(ids := [runner.start(running), runner.start(held)])
    wait_for_text(running.directory / "stdout.txt", "ready")
    subprocess.run(["scancel", *ids], check=True, timeout=30)
    attempts = {running.token: (ids[0], running.directory), held.token: (ids[1], held.directory)}
    statuses = wait(runner, attempts, {"finished", "lost"}, timeout=60)
    assert {s.phase for s in statuses.values()} == {"finished"}
    assert statuses[running.token].reason == "cancelled"
    markers = read_markers(running.directory, running.token)  # SLURM's SIGTERM reached the program
    assert markers.exit_code == -15 and markers.reason in ("", "terminated")
    assert statuses[held.token].reason == "cancelled" and statuses[held.token].exit_code is None
    assert statuses[held.token].scheduler_state == "CANCELLED"


@needs_slurm
def test_unrecorded_submission_is_found_by_token(tmp_path, jobs):
    runner = SlurmRunner()
    req = request(tmp_path / "run", "print('never')", extra=["--hold"])
    jobs.append(runner_id := runner.start(req))
    status = runner.poll({req.token: ("", req.directory)})[req.token]
    assert status.phase == "queued" and status.extra["runner_id"] == runner_id
    assert status.reason == "JobHeldUser" and status.scheduler_state == "PENDING"
    nobody = runner.poll({token(): ("", tmp_path), "x": ("999999999", tmp_path)})
    assert {s.phase for s in nobody.values()} == {"lost"}


@needs_slurm
@pytest.mark.slow
def test_one_squeue_per_poll_for_1_10_100_tokens(tmp_path, jobs, monkeypatch):
    runner = SlurmRunner()
    attempts = {}
    for i in range(100):
        req = request(tmp_path / f"r{i}", "print('never')", extra=["--hold"])
        jobs.append(runner_id := runner.start(req))
        attempts[req.token] = (runner_id, req.directory)
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    for command in ("squeue", "scontrol"):
        wrapper = bin_dir / command
        wrapper.write_text(f'#!/bin/sh\necho "{command} $*" >> {calls}\nexec {shutil.which(command)} "$@"\n')
        wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    tokens = list(attempts)
    for count in (1, 10, 100):
        calls.write_text("")
        statuses = runner.poll({t: attempts[t] for t in tokens[:count]})
        lines = calls.read_text().splitlines()
        assert len(lines) == 1 and lines[0].startswith("squeue "), lines
        assert len(statuses) == count
        assert {(s.phase, s.reason) for s in statuses.values()} == {("queued", "JobHeldUser")}


@needs_slurm
def test_cancel_stops_a_running_job(tmp_path, jobs):
    runner = SlurmRunner()
    req = request(tmp_path / "run", "import time; print('ready', flush=True); time.sleep(600)")
    jobs.append(runner_id := runner.start(req))
    wait_for_text(req.directory / "stdout.txt", "ready")
    runner.cancel(runner_id)
    attempts = {req.token: (runner_id, req.directory)}
    status = wait(runner, attempts, {"finished", "lost"}, timeout=60)[req.token]
    assert (status.phase, status.reason) == ("finished", "cancelled")
    assert status.exit_code == -15
    runner.cancel(runner_id)  # cancelling a finished job is not an error


@needs_slurm
def test_bundle_runs_each_request_under_its_own_token(tmp_path, jobs):
    runner = SlurmRunner()
    requests = [request(tmp_path / f"r{i}", f"print('task {i}'); raise SystemExit({i})", walltime="60")
                for i in range(3)]
    jobs.append(runner_id := runner.start_bundle(requests))
    attempts = {r.token: (runner_id, r.directory) for r in requests}
    statuses = wait(runner, attempts, {"finished", "lost"})
    assert [statuses[r.token].exit_code for r in requests] == [0, 1, 2]
    for i, r in enumerate(requests):
        assert (r.directory / "stdout.txt").read_text().count("task") >= 1
        assert f"task {i}" in (r.directory / "stdout.txt").read_text()
    found = runner.poll({requests[1].token: ("", requests[1].directory)})[requests[1].token]
    assert found.extra["runner_id"] == runner_id and found.exit_code == 1


@needs_slurm
def test_job_that_never_reached_the_wrapper_is_failed_with_its_exit_code(tmp_path, jobs):
    runner = SlurmRunner(python=str(tmp_path / "no-such-python"))
    req = request(tmp_path / "run", "print('never')")
    jobs.append(runner_id := runner.start(req))
    status = wait(runner, {req.token: (runner_id, req.directory)}, {"finished", "lost"})[req.token]
    assert (status.phase, status.exit_code, status.reason) == ("finished", 127, "failed")
    assert status.scheduler_state == "FAILED"


@needs_slurm
def test_sbatch_refusal_is_a_runner_error(tmp_path):
    with pytest.raises(RunnerError, match="(?i)partition"):
        SlurmRunner().start(request(tmp_path / "run", "pass", partition="no_such_partition"))


# --- script rendering and validation (no SLURM needed) ---------------------------------------

@pytest.mark.parametrize("field, value", [
    ("partition", "debug; rm -rf ~"), ("account", "a b"), ("qos", "normal\n#SBATCH --mem=1T"),
    ("memory", "4G; reboot"), ("walltime", "soon"), ("extra", ["--constraint=a&b"]),
    ("extra", ["--output=/etc/passwd"]), ("extra", ["--mail-user=x\n#SBATCH --x"]),
    ("setup", ["module load x\nrm -rf ~"]), ("tasks", 0),
])
def test_unsafe_resource_values_are_refused_naming_the_field(tmp_path, field, value):
    req = RunRequest(directory=tmp_path, argv=["true"], token="ag2-x", resources=Resources(**{field: value}))
    with pytest.raises(PlanError, match=f"resources.{field}"):
        render(slurm_directives([req]), [req], sys.executable, "SLURM_JOB_ID")


@pytest.mark.parametrize("where, bad", [("token", "a;b"), ("stdout", "../out"), ("env", {"A;B": "1"})])
def test_unsafe_names_are_refused(tmp_path, where, bad):
    fields = {"token": "ag2-x", "stdout": "stdout.txt", "env": {}} | {where: bad}
    req = RunRequest(directory=tmp_path, argv=["true"], **fields)  # type: ignore[arg-type]
    with pytest.raises(PlanError):
        render(slurm_directives([req]), [req], sys.executable, "SLURM_JOB_ID")


def test_directives_from_resources(tmp_path):
    req = RunRequest(directory=tmp_path, argv=["qwalk", "in put"], token="ag2-abc", env={"X": "a'b"},
                     resources=Resources(nodes=2, tasks=8, cpus_per_task=2, memory="4g",
                                         walltime="1-02:00:30", partition="batch", account="proj.1",
                                         qos="long",
                                         extra=["--constraint=haswell", "--exclusive"],
                                         setup=["module load gcc/12"], launcher=["srun"]))
    script = render(slurm_directives([req]), [req], "/opt/py/bin/python", "SLURM_JOB_ID").splitlines()
    root = tmp_path.resolve()
    assert script[:15] == [
        "#!/bin/bash", "#SBATCH --job-name=ag2-abc", f"#SBATCH --output={root}/stdout.txt",
        "#SBATCH --open-mode=append", f"#SBATCH --chdir={root}", "#SBATCH --nodes=2", "#SBATCH --ntasks=8",
        "#SBATCH --cpus-per-task=2", "#SBATCH --mem=4G", "#SBATCH --time=1-02:00:30",
        "#SBATCH --partition=batch", "#SBATCH --account=proj.1", "#SBATCH --qos=long",
        "#SBATCH --constraint=haswell", "#SBATCH --exclusive"]
    assert script[16] == "module load gcc/12"
    assert script[17] == (
        f'cd {root} && printf "%s\\n" "$SLURM_JOB_ID" > .autogenv2/ag2-abc.jobid && exec env '
        "'X=a'\"'\"'b' /opt/py/bin/python -m autogenv2.runners.launch ag2-abc --walltime 93570.0 "
        "-- srun qwalk 'in put' >> stdout.txt 2>&1")


def test_wrapper_stops_before_the_scheduler():
    def inner(walltime: str) -> str | None:
        req = RunRequest(directory=Path("."), argv=["x"], token="t", resources=Resources(walltime=walltime))
        return wrapper_request(req).resources.walltime
    assert [inner(w) for w in ("00:01:00", "48:00:00", "20", "01:00:00")] == ["45", "172740", "10", "3540"]
    assert wrapper_request(RunRequest(directory=Path("."), argv=["x"], token="t")).resources.walltime is None


def test_bundle_needs_equal_resources_and_adds_walltimes(tmp_path):
    def make(name: str, **resources: object) -> RunRequest:
        return RunRequest(directory=tmp_path / name, argv=["x"], token=f"ag2-{name}",
                          resources=Resources(**resources))
    lines = slurm_directives([make("a", walltime="60", tasks=2), make("b", walltime="00:02:00", tasks=2)])
    assert "#SBATCH --job-name=ag2-a,ag2-b" in lines and "#SBATCH --time=0-00:03:00" in lines
    with pytest.raises(PlanError, match="ag2-b.*other resources"):
        slurm_directives([make("a", tasks=2), make("b", tasks=4)])


# -- SlurmRunner on recorded squeue/scontrol text (tests/data/slurm, see its INDEX.md): no cluster needed.
# Stand-in ``squeue``/``scontrol`` scripts first on PATH replay the real text and log their arguments.

SLURM_DATA = Path(__file__).parent / "data" / "slurm"


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Replay the recording of ``moment`` ("early" or "late"); returns a function giving the logged calls."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    calls.write_text("")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")

    def replay(moment: str, forget: bool = False) -> Path:
        """``forget``: scontrol answers as for a job SLURM no longer remembers (recorded stderr)."""
        data = SLURM_DATA
        files = f"{data}/scontrol_{moment}_$id.txt {data}/scontrol_$id.txt"
        look = f'for f in {files}; do [ -f "$f" ] && exec cat "$f"; done'
        squeue = ["#!/bin/sh", f'echo "squeue $*" >> {calls}', f"cat {data}/squeue_{moment}.txt", ""]
        (bin_dir / "squeue").write_text("\n".join(squeue))
        (bin_dir / "scontrol").write_text("\n".join([
            "#!/bin/sh", f'echo "scontrol $*" >> {calls}', "for id; do :; done", "" if forget else look,
            f"cat {data}/scontrol_unknown_stderr.txt >&2", "exit 1", ""]))
        for name in ("squeue", "scontrol"):
            (bin_dir / name).chmod(0o755)
        return calls

    return replay


TOKENS = ["ag2-running", "ag2-dependency", "ag2-held", "ag2-completed", "ag2-failed", "ag2-signalled",
          "ag2-cancelled-running", "ag2-cancelled-pending", "ag2-timeout", "ag2-b1", "ag2-b2", "ag2-gone"]

EXPECTED_LATE = {  # token: (job id, phase, exit code, reason, scheduler state)
    "ag2-running": ("1", "running", None, "", "RUNNING"),
    "ag2-dependency": ("2", "queued", None, "Dependency", "PENDING"),
    "ag2-held": ("3", "queued", None, "JobHeldUser", "PENDING"),
    "ag2-completed": ("4", "finished", 0, "no exit file", "COMPLETED"),
    "ag2-failed": ("5", "finished", 1, "failed", "FAILED"),
    "ag2-signalled": ("6", "finished", -9, "failed", "FAILED"),
    "ag2-cancelled-running": ("7", "finished", -15, "cancelled", "CANCELLED"),
    "ag2-cancelled-pending": ("8", "finished", None, "cancelled", "CANCELLED"),
    "ag2-timeout": ("9", "finished", -15, "walltime", "TIMEOUT"),
    "ag2-b1": ("10", "finished", 0, "no exit file", "COMPLETED"),
    "ag2-b2": ("10", "finished", 0, "no exit file", "COMPLETED"),
}


def _seen(statuses: dict[str, RunStatus]) -> dict[str, tuple[object, ...]]:
    return {token: (s.extra.get("runner_id"), s.phase, s.exit_code, s.reason, s.scheduler_state)
            for token, s in statuses.items() if s.phase != "lost"}


def test_recorded_states_map_to_phases_exit_codes_and_reasons(
        tmp_path: Path, recorded: Callable[..., Path]) -> None:
    calls = recorded("late")
    statuses = SlurmRunner().poll({token: ("", tmp_path / token) for token in TOKENS})
    assert _seen(statuses) == EXPECTED_LATE
    assert statuses["ag2-gone"].phase == "lost"  # a token SLURM never heard of
    log = calls.read_text().splitlines()
    assert log[0] == "squeue --me --noheader --states=all --format=%i|%T|%r|%j" and len(log) == 8
    assert sorted(line.split()[-1] for line in log[1:]) == sorted(["4", "5", "6", "7", "8", "9", "10"])
    assert all(line.startswith("scontrol --oneliner show job ") for line in log[1:])  # once per ended job


def test_recorded_early_moment_by_recorded_job_id(tmp_path: Path, recorded: Callable[..., Path]) -> None:
    recorded("early")
    statuses = SlurmRunner().poll({"t-timeout": ("9", tmp_path), "t-bundle": ("10", tmp_path),
                                   "t-none": ("77", tmp_path)})
    assert _seen(statuses) == {"t-timeout": ("9", "running", None, "", "RUNNING"),
                               "t-bundle": ("10", "queued", None, "Resources", "PENDING")}
    assert statuses["t-none"].phase == "lost"


def test_recorded_exit_file_wins_and_the_scheduler_names_the_killer(
        tmp_path: Path, recorded: Callable[..., Path]) -> None:
    """With the wrapper's exit file the exit code is the program's; SIGTERM's cause comes from SLURM."""
    calls = recorded("late")
    for token, code, reason in [("ag2-timeout", -15, "terminated"), ("ag2-completed", 0, ""),
                                ("ag2-cancelled-running", -15, "")]:
        markers = tmp_path / token / ".autogenv2"
        markers.mkdir(parents=True)
        (markers / f"{token}.exit").write_text(
            f'{{"exit_code": {code}, "reason": "{reason}", "started_at": 1.0, "ended_at": 61.0}}')
    statuses = SlurmRunner().poll({t: ("", tmp_path / t) for t in ("ag2-timeout", "ag2-completed",
                                                                  "ag2-cancelled-running")})
    assert _seen(statuses) == {"ag2-timeout": ("9", "finished", -15, "walltime", "TIMEOUT"),
                               "ag2-completed": ("4", "finished", 0, "", "COMPLETED"),
                               "ag2-cancelled-running": ("7", "finished", -15, "cancelled", "CANCELLED")}
    assert statuses["ag2-timeout"].ended_at == 61.0
    assert calls.read_text().count("scontrol") == 0  # exit files: no second scheduler call


def test_recorded_job_forgotten_between_squeue_and_scontrol(
        tmp_path: Path, recorded: Callable[..., Path]) -> None:
    """scontrol's "Invalid job id" (recorded) is benign: the squeue record decides."""
    calls = recorded("late", forget=True)
    statuses = SlurmRunner().poll({t: ("", tmp_path) for t in ("ag2-failed", "ag2-timeout", "ag2-running")})
    assert _seen(statuses) == {"ag2-failed": ("5", "finished", None, "failed", "FAILED"),
                               "ag2-timeout": ("9", "finished", None, "walltime", "TIMEOUT"),
                               "ag2-running": ("1", "running", None, "", "RUNNING")}
    assert calls.read_text().count("scontrol") == 2
