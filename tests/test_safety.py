"""Concurrency and broken state: a second run waits or says why; a corrupt status is kept aside."""
from __future__ import annotations

from pathlib import Path

from filelock import FileLock

from conftest import TINY_PLAN, autogenv2


def test_second_run_on_same_root_exits_with_clear_message(tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text(TINY_PLAN)
    (tmp_path / "runs").mkdir()
    with FileLock(str(tmp_path / "runs" / ".autogenv2.lock")):
        proc = autogenv2("run", str(tmp_path / "plan.toml"))
    assert proc.returncode == 1
    assert "another `autogenv2 run` is working on" in proc.stdout
    assert not (tmp_path / "runs" / "h2").exists(), "nothing may be done without the lock"


def test_corrupt_status_is_reported_and_kept(tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text(TINY_PLAN.replace('code = "pyscf"', 'code = "pyscf"\nmax_cycle = 1',
                                                          1))
    job = tmp_path / "runs" / "h2"
    job.mkdir(parents=True)
    (job / "status.json").write_text('{"schema_version": 1, "job_id": "h2", "elem')
    proc = autogenv2("run", str(tmp_path / "plan.toml"))
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert "corrupt JSON" in proc.stdout and "mv " in proc.stdout
    assert len(list(job.glob("status.json.corrupt-*"))) == 1
    assert not (job / "scf").exists(), "a job whose status is unreadable is not touched"


def test_symlinked_job_directory_outside_root_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text(TINY_PLAN)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "h2").symlink_to(outside)
    proc = autogenv2("run", str(tmp_path / "plan.toml"))
    assert proc.returncode == 1 and "outside" in proc.stdout
    assert list(outside.iterdir()) == []

