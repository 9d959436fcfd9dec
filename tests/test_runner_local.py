"""LocalRunner with real detached processes and the real launch wrapper."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from autogenv2.runners.base import Resources, RunRequest, read_markers
from autogenv2.runners.local import LocalRunner


@pytest.fixture
def started():  # type: ignore[no-untyped-def]
    """Requests whose wrapper's process group (pid in the .started marker) is SIGKILLed at the end."""
    requests: list[RunRequest] = []
    yield requests
    for req in requests:
        markers = read_markers(req.directory, req.token)
        pid = markers.extra.get("pid") if markers is not None and markers.phase == "running" else None
        if pid:
            try:
                os.killpg(int(pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def make(directory: Path, code: str, **resources: object) -> RunRequest:
    directory.mkdir(parents=True, exist_ok=True)
    return RunRequest(directory=directory, argv=[sys.executable, "-c", code],
                      token=f"ag2l-{uuid.uuid4().hex[:8]}", resources=Resources(**resources))


def wait(runner: LocalRunner, req: RunRequest, runner_id: str, phases: set[str], timeout: float = 30):
    deadline = time.time() + timeout
    while True:
        status = runner.poll({req.token: (runner_id, req.directory)})[req.token]
        if status.phase in phases or time.time() > deadline:
            return status
        time.sleep(0.1)


def wait_for_text(path: Path, text: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while not (path.exists() and text in path.read_text()):
        assert time.time() < deadline, f"{text!r} never appeared in {path}"
        time.sleep(0.05)


def test_detached_run_survives_the_process_that_started_it(tmp_path, started):
    req = make(tmp_path / "run", "import time; time.sleep(1); print('survived')")
    starter = (
        "import sys; from pathlib import Path\n"
        "from autogenv2.runners.base import RunRequest\n"
        "from autogenv2.runners.local import LocalRunner\n"
        f"req = RunRequest(directory=Path({str(req.directory)!r}), argv={req.argv!r}, token={req.token!r})\n"
        "print(LocalRunner().start(req))\n"
    )
    done = subprocess.run([sys.executable, "-c", starter], capture_output=True, text=True, timeout=60,
                          check=True)
    pid = done.stdout.strip()
    started.append(req)
    runner = LocalRunner()
    assert runner.poll({req.token: (pid, req.directory)})[req.token].phase in ("queued", "running")
    status = wait(runner, req, pid, {"finished", "lost"})
    assert (status.phase, status.exit_code) == ("finished", 0)
    assert "survived" in (req.directory / "stdout.txt").read_text()


def test_exit_file_records_the_programs_exit_code(tmp_path, started):
    runner = LocalRunner()
    req = make(tmp_path / "run", "raise SystemExit(3)")
    pid = runner.start(req)
    started.append(req)
    status = wait(runner, req, pid, {"finished", "lost"})
    assert (status.phase, status.exit_code, status.reason) == ("finished", 3, "")
    exit_file = json.loads((req.directory / ".autogenv2" / f"{req.token}.exit").read_text())
    assert exit_file["exit_code"] == 3 and exit_file["started_at"] <= exit_file["ended_at"]


def test_walltime_is_enforced_by_the_wrapper(tmp_path, started):
    runner = LocalRunner()
    req = make(tmp_path / "run", "import time; time.sleep(60)", walltime="1")
    begin = time.time()
    pid = runner.start(req)
    started.append(req)
    status = wait(runner, req, pid, {"finished", "lost"})
    assert (status.phase, status.reason, status.exit_code) == ("finished", "walltime", -15)
    assert time.time() - begin < 15


def test_sigkilled_wrapper_is_lost(tmp_path, started):
    runner = LocalRunner()
    req = make(tmp_path / "run", "import time; print('ready', flush=True); time.sleep(60)")
    pid = runner.start(req)
    started.append(req)
    wait_for_text(req.directory / "stdout.txt", "ready")
    found = runner.poll({req.token: ("", req.directory)})[req.token]  # by token, from the .started marker
    assert found.extra["runner_id"] == pid
    os.kill(int(pid), signal.SIGKILL)
    status = wait(runner, req, pid, {"finished", "lost"})
    assert status.phase == "lost" and read_markers(req.directory, req.token).phase == "running"


def test_cancel_stops_the_run(tmp_path, started):
    runner = LocalRunner()
    req = make(tmp_path / "run", "import time; print('ready', flush=True); time.sleep(60)")
    pid = runner.start(req)
    started.append(req)
    wait_for_text(req.directory / "stdout.txt", "ready")
    runner.cancel(pid)
    status = wait(runner, req, pid, {"finished", "lost"})
    assert status.phase == "finished" and status.exit_code == -15 and status.reason in ("terminated", "")
    runner.cancel(pid)  # cancelling a finished run is not an error
