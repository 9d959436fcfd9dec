"""Manager transitions in process: a toy element driven by the fake runner (runners/fake.py), one
poll per pass as the ensemble does, through Manager.advance and the resulting ElementStatus."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from autogenv2 import manager as manager_module
from autogenv2.manager import file_sha256
from autogenv2.runners.fake import FakeRunner, finished, lost, queued, running, toy_blocks, walltime
from autogenv2.states import State
from engine_kit import advance, context, drive, make_step, manager, one_pass, toy_step


def test_planned_ready_running_done(tmp: Path) -> None:
    fake = FakeRunner()
    mgr = manager(tmp, toy_step())
    fake.script(mgr.directory, [queued("Resources"), queued("Resources"), running(),
                                finished(0, write=toy_blocks())])
    ctx = context(fake)
    assert advance(mgr, ctx) == "wrote inputs"
    assert mgr.status.state is State.ready and (mgr.directory / "params.json").exists()
    start = advance(mgr, ctx)
    assert start == "started attempt 1 (fake fake-1)" and mgr.status.state.value == "running"
    assert advance(mgr, ctx) is None  # nothing polled yet: it waits
    attempt = mgr.status.attempts[0]
    assert (attempt.phase, attempt.runner, attempt.runner_id) == ("queued", "fake", "fake-1")
    assert fake.started[0].argv[-1] == "run.py" and fake.started[0].token == attempt.token
    assert one_pass(mgr, ctx, fake) == ["attempt 1 queued"]
    assert attempt.reason == "Resources" and attempt.scheduler_state == "PENDING"
    assert one_pass(mgr, ctx, fake) == []  # the same answer again is no change
    assert one_pass(mgr, ctx, fake) == ["attempt 1 running"]
    assert attempt.started_at is not None and attempt.phase == "running"
    assert one_pass(mgr, ctx, fake) == ["attempt 1: done"]
    status = mgr.status
    assert status.state is State.done and status.reason == "" and status.failures == 0
    assert status.outputs == {"hdf": "mc/blocks.json"} and status.result["blocks"] == 20
    assert (attempt.phase, attempt.exit_code) == ("finished", 0)
    assert (attempt.verdict, attempt.blocks) == ("complete", 20)
    assert attempt.seconds == pytest.approx(60.0)
    assert [e["event"] for e in status.events] == ["done"]
    assert one_pass(mgr, ctx, fake) == [] and len(fake.started) == 1  # done is final: nothing restarts


def test_needs_more_continues_the_same_run(tmp: Path) -> None:
    fake = FakeRunner(default=(finished(0, write=toy_blocks()),))
    mgr = manager(tmp, toy_step(target_error=0.0015, target_confidence=0.5))
    first = one_pass(mgr, context(fake), fake)
    assert first == ["wrote inputs", "started attempt 1 (fake fake-1)"]
    second = one_pass(mgr, context(fake), fake)
    assert second[0].startswith("attempt 1: needs more (") and "continuing to" in second[0]
    assert second[1] == "started attempt 2 (fake fake-2)"
    total = mgr.status.writer["nblocks"]
    assert total > 20 and json.loads((mgr.directory / "params.json").read_text())["nblocks"] == total
    actions = drive(mgr, context(fake), fake)
    assert mgr.status.state is State.done, actions
    assert mgr.status.result["blocks"] >= total and mgr.status.result["error"] <= 0.0015 * 1.01
    written = json.loads((mgr.directory / "blocks.json").read_text())["energy"]
    assert len(written) == mgr.status.result["blocks"]
    assert [a.verdict for a in mgr.status.attempts][:1] == ["incomplete"]


def test_retry_then_give_up(tmp: Path) -> None:
    """Exit 0 without output is a retryable failure: retried max_retries times, then failed."""
    fake = FakeRunner(default=(running(), finished(0)))
    mgr = manager(tmp, toy_step(max_retries=2))
    actions = drive(mgr, context(fake), fake)
    retries = [a for a in actions if a.endswith("retrying")]
    assert len(retries) == 2 and "blocks.json was not written" in retries[0]
    assert mgr.status.state is State.failed and len(mgr.status.attempts) == 3
    assert mgr.status.reason == "blocks.json was not written (failed 3 times; retries exhausted)"
    assert [e["event"] for e in mgr.status.events] == ["retry", "retry", "failed"]


def test_retry_succeeds_and_resets_failures(tmp: Path) -> None:
    fake = FakeRunner()
    mgr = manager(tmp, toy_step())
    fake.script(mgr.directory, [finished(0)], [finished(0, write=toy_blocks())])
    drive(mgr, context(fake), fake)
    assert mgr.status.state is State.done and mgr.status.failures == 0 and len(mgr.status.attempts) == 2


def test_program_error_fails_without_retry(tmp: Path) -> None:
    traceback = "Traceback (most recent call last):\nValueError: bad seed"
    fake = FakeRunner(default=(finished(1, stdout=traceback),))
    mgr = manager(tmp, toy_step())
    drive(mgr, context(fake), fake)
    assert mgr.status.state is State.failed and len(mgr.status.attempts) == 1
    assert mgr.status.reason == "toy run raised an error: ValueError: bad seed"


def test_max_attempts_counts_continuations(tmp: Path) -> None:
    fake = FakeRunner(default=(walltime(write=toy_blocks(stop=3), seconds=30),))
    mgr = manager(tmp, toy_step(max_attempts=3))
    drive(mgr, context(fake), fake)
    assert mgr.status.state is State.failed and len(mgr.status.attempts) == 3
    assert mgr.status.reason.startswith("gave up after 3 attempts (max_attempts = 3); the last: "
                                        "stopped after 9 of")


def test_max_core_hours(tmp: Path) -> None:
    fake = FakeRunner(default=(walltime(write=toy_blocks(stop=5), seconds=1800),))
    mgr = manager(tmp, toy_step(max_core_hours=1.0, resources={"tasks": 2}))
    drive(mgr, context(fake), fake)
    assert mgr.status.state is State.failed and len(mgr.status.attempts) == 1
    assert mgr.status.reason == "used 1 core-hours of the 1 allowed"


def test_walltime_kill_is_progress_and_sizes_the_next_attempt(tmp: Path) -> None:
    fake = FakeRunner()
    mgr = manager(tmp, toy_step(nblocks=40, resources={"walltime": "00:10:00"}))
    fake.script(mgr.directory, [running(), walltime(write=toy_blocks(stop=8), seconds=600)],
                [running(), finished(0, write=toy_blocks(), seconds=300)])
    ctx = context(fake)
    one_pass(mgr, ctx, fake)
    one_pass(mgr, ctx, fake)
    actions = one_pass(mgr, ctx, fake)
    first = mgr.status.attempts[0]
    assert (first.exit_code, first.reason, first.verdict, first.blocks) == (-15, "walltime", "incomplete", 8)
    assert actions[0].startswith("attempt 1: needs more (stopped after 8 of 40 blocks")
    assert actions[1] == "started attempt 2 (fake fake-2)"
    limit = 8 + int(0.8 * 600 / (600 / 8))  # done + blocks that fit in 80 % of the walltime
    assert mgr.status.writer["attempt_limit"] == limit == 14
    assert json.loads((mgr.directory / "params.json").read_text())["attempt_limit"] == 14
    one_pass(mgr, ctx, fake)
    assert one_pass(mgr, ctx, fake)[0].startswith("attempt 2: needs more (stopped after 14 of 40 blocks")
    assert mgr.status.attempts[1].blocks == 14 and mgr.status.attempts[1].seconds == pytest.approx(300.0)
    assert fake.started[-1].token == mgr.status.attempts[-1].token and len(fake.started) == 3


def test_killed_by_the_scheduler_after_its_walltime(tmp: Path) -> None:
    """A SLURM TIMEOUT has no exit code: it counts as killed, and blocks written count."""
    fake = FakeRunner()
    mgr = manager(tmp, toy_step())
    fake.script(mgr.directory, [finished(None, reason="walltime", write=toy_blocks(stop=4))])
    drive(mgr, context(fake), fake, passes=2)
    assert mgr.status.attempts[0].verdict == "incomplete" and mgr.status.attempts[0].blocks == 4


def test_lost_while_running_is_a_kill(tmp: Path) -> None:
    fake = FakeRunner()
    mgr = manager(tmp, toy_step())
    fake.script(mgr.directory, [running(), lost("node failure")], [finished(0, write=toy_blocks())])
    drive(mgr, context(fake), fake)
    first = mgr.status.attempts[0]
    assert (first.phase, first.reason, first.verdict) == ("lost", "node failure", "incomplete")
    assert mgr.status.state is State.done and len(mgr.status.attempts) == 2


def test_lost_before_start_waits_the_grace_then_claims_the_token(tmp: Path) -> None:
    fake = FakeRunner()
    fake.refuse.append("connection reset")
    mgr = manager(tmp, toy_step())
    saved: list[str] = []
    ctx = context(fake, save=lambda: saved.append(mgr.status.attempts[-1].phase))
    advance(mgr, ctx)
    with pytest.raises(Exception, match="connection reset"):
        advance(mgr, ctx)
    attempt = mgr.status.attempts[0]
    assert saved == ["submitting"] and attempt.phase == "submitting" and mgr.status.state is State.running
    assert one_pass(mgr, ctx, fake) == []  # the runner does not know it, but it may still arrive
    attempt.submitted_at -= manager_module.LOST_GRACE_SECONDS + 1
    actions = one_pass(mgr, ctx, fake)
    assert actions[0] == "attempt 1 never reached the runner; a new one will start"
    assert (attempt.phase, attempt.reason) == ("lost", "never started (abandoned)")
    assert (mgr.directory / ".autogenv2" / f"{attempt.token}.claim").exists()  # a late launch cannot run it
    assert actions[1] == "started attempt 2 (fake fake-1)" and len(fake.started) == 1


def test_lost_before_start_that_did_start_is_left_to_the_next_poll(tmp: Path) -> None:
    fake = FakeRunner()
    fake.refuse.append("timeout")
    mgr = manager(tmp, toy_step())
    ctx = context(fake)
    advance(mgr, ctx)
    with pytest.raises(Exception, match="timeout"):
        advance(mgr, ctx)
    attempt = mgr.status.attempts[0]
    attempt.submitted_at -= manager_module.LOST_GRACE_SECONDS + 1
    markers = mgr.directory / ".autogenv2"
    markers.mkdir()
    (markers / f"{attempt.token}.started").write_text("{}")
    assert one_pass(mgr, ctx, fake) == []
    assert attempt.phase == "submitting" and mgr.status.state is State.running


def test_capacity_limit_holds_the_start(tmp: Path) -> None:
    fake = FakeRunner(max_active=1)
    mgr = manager(tmp, toy_step())
    ctx = context(fake, active={"fake": 1})
    assert advance(mgr, ctx) == "wrote inputs"
    assert advance(mgr, ctx) is None and mgr.status.state is State.ready and not fake.started
    ctx.active = {"fake": 0}
    assert advance(mgr, ctx) == "started attempt 1 (fake fake-1)" and ctx.active == {"fake": 1}


def test_bundling_defers_the_submission(tmp: Path) -> None:
    fake = FakeRunner()
    mgr = manager(tmp, toy_step())
    ctx = context(fake, bundle_size=lambda runner: 4)
    advance(mgr, ctx)
    assert advance(mgr, ctx) == "attempt 1 waits to be bundled"
    request, attempt, _save = ctx.pending["fake"][0]
    assert attempt is mgr.status.attempts[0] and attempt.phase == "submitting" and not fake.started
    assert request.token == attempt.token and request.directory == mgr.directory


def test_submission_whose_id_was_never_saved_is_found_by_its_token(tmp: Path) -> None:
    """autogenv2 died after the runner took the attempt but before its id was saved: the next poll finds
    the attempt by its token and records the id; nothing is submitted again."""
    fake = FakeRunner()
    mgr = manager(tmp, toy_step())
    ctx = context(fake, bundle_size=lambda runner: 2)
    one_pass(mgr, ctx, fake)
    request, attempt, _save = ctx.pending["fake"][0]
    fake.adopt(request, [running(), finished(0, write=toy_blocks())], runner_id="fake-77")
    assert attempt.runner_id == "" and attempt.phase == "submitting"
    assert one_pass(mgr, context(fake), fake) == ["attempt 1 running"]
    assert attempt.runner_id == "fake-77"
    drive(mgr, context(fake), fake)
    assert mgr.status.state is State.done and fake.started == [] and len(mgr.status.attempts) == 1


def test_program_not_started_fails_once(tmp: Path) -> None:
    fake = FakeRunner(default=(finished(127, reason="cannot start program"),))
    mgr = manager(tmp, toy_step())
    drive(mgr, context(fake), fake)
    assert mgr.status.state is State.failed and len(mgr.status.attempts) == 1
    assert mgr.status.reason.startswith("the program could not be started on runner 'fake'")


def test_missing_upstream_input_fails_with_its_name(tmp: Path) -> None:
    mgr = manager(tmp, make_step("vmc", "pyqmc", "vmc"))
    assert advance(mgr, context(FakeRunner())) == ("failed: needs chkfile from an earlier step, and none "
                                               "provides it")
    assert mgr.status.state is State.failed


def test_lineage_names_the_input_and_its_hash(tmp: Path) -> None:
    chk = tmp / "job" / "scf" / "scf.chk"
    chk.parent.mkdir(parents=True)
    chk.write_bytes(b"orbitals")
    step = make_step("vmc", "pyqmc", "vmc", nblocks=5)
    mgr = manager(tmp, step, {"chkfile": chk, "unused": chk})
    mgr.origins = {"chkfile": ("scf", 2)}
    assert advance(mgr, context(FakeRunner())) == "wrote inputs"
    assert mgr.status.lineage == {"chkfile": {"element": "scf", "attempt": 2, "path": "scf.chk",
                                              "sha256": file_sha256(chk)}}
    assert len(file_sha256(chk)) == 64 and file_sha256(tmp) == ""
    assert json.loads((mgr.directory / "params.json").read_text())["chkfile"] == "../scf/scf.chk"


def test_health_flag_without_fix_is_recorded_once(tmp: Path) -> None:
    fake = FakeRunner(default=(finished(0, write=toy_blocks(spikes={12: 5.0})),))
    mgr = manager(tmp, toy_step())
    drive(mgr, context(fake), fake)
    flags = [e for e in mgr.status.events if e["event"] == "health-flag"]
    assert mgr.status.state is State.done and len(flags) == 1 and flags[0]["check"] == "spikes"


def test_equilibration_fix_samples_more_then_cuts_the_warmup(tmp: Path) -> None:
    fake = FakeRunner(default=(finished(0, write=toy_blocks()),))
    mgr = manager(tmp, toy_step(nblocks=32, transient=0.5, transient_blocks=4.0))
    drive(mgr, context(fake), fake)
    fixes = [e for e in mgr.status.events if e["event"] == "health-fix"]
    assert [f["check"] for f in fixes] == ["equilibration", "equilibration"]
    assert fixes[0]["writer"] == {"nblocks": 64} and fixes[1]["reader"] == {"warmup": 16}
    assert mgr.status.state is State.done and mgr.status.result["warmup"] == 16
    assert mgr.status.result["energy"] == pytest.approx(-1.0, abs=0.02)
    assert mgr.reader.warmup == 16  # type: ignore[attr-defined]
    rebuilt = manager(tmp, toy_step(nblocks=32))  # the fix is replayed from the events
    rebuilt_again = type(mgr)(mgr.status, mgr.directory, toy_step(), {})
    assert rebuilt.reader.warmup == 0 and rebuilt_again.reader.warmup == 16  # type: ignore[attr-defined]


def test_population_fix_halves_the_timestep_and_redoes(tmp: Path) -> None:
    fake = FakeRunner(default=(finished(0, write=toy_blocks()),))
    mgr = manager(tmp, toy_step(nblocks=40, tstep=0.08, stable_tstep=0.05))
    actions = drive(mgr, context(fake), fake)
    redo = next(a for a in actions if "redoing with tstep" in a)
    assert "redoing with tstep 0.04 (old run in mc.archived-1)" in redo
    assert (tmp / "job" / "mc.archived-1" / "blocks.json").exists()
    assert mgr.status.state is State.done and mgr.status.writer["tstep"] == 0.04
    assert mgr.status.archived == ["mc.archived-1"] and len(mgr.status.attempts) == 1


def test_population_that_persists_fails(tmp: Path) -> None:
    fake = FakeRunner(default=(finished(0, write=toy_blocks()),))
    mgr = manager(tmp, toy_step(nblocks=40, tstep=0.4, stable_tstep=0.05))
    drive(mgr, context(fake), fake)
    assert mgr.status.state is State.failed
    assert mgr.status.reason.startswith("health check 'population' still fails after its fix")


def test_rejudge_rereads_against_the_plan(tmp: Path) -> None:
    fake = FakeRunner(default=(finished(0, write=toy_blocks()),))
    mgr = manager(tmp, toy_step())
    drive(mgr, context(fake), fake)
    error = mgr.status.result["error"]
    tighter = toy_step(target_error=error / 2, target_confidence=0.5)
    again = type(mgr)(mgr.status, mgr.directory, tighter, {})
    assert again.rejudge().startswith("re-read: needs more")
    assert mgr.status.state is State.needs_more and mgr.status.writer["nblocks"] > 20
