"""Plan files: validation errors name the job, step and key, in one line; the Python API is equivalent."""
from __future__ import annotations

from pathlib import Path

import pytest

from autogenv2 import Job, Plan, PlanError, Step, load_plan
from conftest import TINY_PLAN, autogenv2

BAD_PLANS = {
    "unknown_option": (TINY_PLAN.replace("nblocks = 12", "nblok = 12"), ["vmc", "nblok", "nblocks"]),
    "wrong_type": (TINY_PLAN.replace("nblocks = 12", 'nblocks = "twelve"'), ["vmc", "nblocks", "integer"]),
    "duplicate_id": (TINY_PLAN + '[[jobs]]\nid = "h2"\n', ["duplicate job id", "h2"]),
    "slash_in_id": (TINY_PLAN.replace('id = "h2"', 'id = "a/b"'), ["job id", "a/b"]),
    "dotdot_id": (TINY_PLAN.replace('id = "h2"', 'id = ".."'), ["job id", ".."]),
    "unknown_top_key": ("rooot = 'x'\n" + TINY_PLAN, ["rooot"]),
    "unknown_code": (TINY_PLAN.replace('code = "pyscf"', 'code = "vasp"'), ["vasp"]),
    "unknown_method": (TINY_PLAN.replace('method = "rhf"', 'method = "hf"'), ["hf", "rhf"]),
    "bad_override": (TINY_PLAN + 'scff = { basis = "sto-3g" }\n', ["scff"]),
    "negative": (TINY_PLAN.replace("nconfig = 100\nnblocks = 12", "nconfig = -5\nnblocks = 12"), ["nconfig"]),
    "toml_syntax": (TINY_PLAN.replace("[[jobs]]", "[[jobs]"), ["TOML"]),
    "shell_meta": (TINY_PLAN.replace('id = "h2"', 'id = "x;rm -rf ~"'), ["job id"]),
}


@pytest.mark.parametrize("case", sorted(BAD_PLANS))
def test_bad_plan_is_one_line_naming_the_problem(case: str, tmp_path: Path) -> None:
    text, words = BAD_PLANS[case]
    path = tmp_path / "plan.toml"
    path.write_text(text)
    with pytest.raises(PlanError) as info:
        load_plan(path)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, (word, message)


def test_cli_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(BAD_PLANS["unknown_option"][0])
    proc = autogenv2("run", str(path))
    assert proc.returncode == 1
    out = (proc.stdout + proc.stderr).strip()
    assert "Traceback" not in out
    assert len(out.splitlines()) == 1 and "nblok" in out
    assert not (tmp_path / "runs").exists(), "a bad plan must not create anything"


def test_python_api_builds_the_same_plan(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(TINY_PLAN)
    from_file = load_plan(path)
    steps = [Step(name=s.name, code=s.code, method=s.method, after=s.after, options=dict(s.options))
             for s in from_file.jobs[0].steps]
    built = Plan(root=tmp_path / "runs", jobs=[Job(id="h2", steps=steps)]).check()
    assert [s.spec() for s in built.jobs[0].steps] == [s.spec() for s in from_file.jobs[0].steps]
    assert built.root == from_file.root


def test_json_plan_equals_toml_plan(tmp_path: Path) -> None:
    import json
    import tomllib

    (tmp_path / "plan.toml").write_text(TINY_PLAN)
    (tmp_path / "plan.json").write_text(json.dumps(tomllib.loads(TINY_PLAN)))
    a, b = load_plan(tmp_path / "plan.toml"), load_plan(tmp_path / "plan.json")
    assert a.model_dump(exclude={"source"}) == b.model_dump(exclude={"source"})


def test_python_api_rejects_bad_option(tmp_path: Path) -> None:
    step = Step(name="scf", code="pyscf", method="rhf", options={"atom": "H 0 0 0", "spin": 1, "chrage": 0})
    plan = Plan(root=tmp_path, jobs=[Job(id="x", steps=[step])])
    with pytest.raises(PlanError, match="chrage.*charge"):
        plan.check()


def test_scans_expand_and_record_their_variables(tmp_path: Path) -> None:
    text = TINY_PLAN.replace('[[jobs]]\nid = "h2"\n', "") + (
        '[[scans]]\nid = "r{r}-t{t}"\nvary = { r = [1.2, 1.4], t = [0.01, 0.02] }\n'
        'scf = { atom = "H 0 0 0; H 0 0 {r}" }\ndmc = { tstep = "{t}" }\n')
    (tmp_path / "plan.toml").write_text(text)
    plan = load_plan(tmp_path / "plan.toml")
    assert [j.id for j in plan.jobs] == ["r1.2-t0.01", "r1.2-t0.02", "r1.4-t0.01", "r1.4-t0.02"]
    job = plan.jobs[3]
    assert job.variables == {"r": 1.4, "t": 0.02}
    assert job.steps[0].options["atom"] == "H 0 0 0; H 0 0 1.4" and job.steps[3].options["tstep"] == 0.02


def test_foreach_fans_out_from_one_upstream_step(tmp_path: Path) -> None:
    dmc = 'name = "dmc"\ncode = "pyqmc"\nmethod = "dmc"\n'
    text = TINY_PLAN.replace(dmc, dmc + "foreach = { tstep = [0.01, 0.04] }\n")
    (tmp_path / "plan.toml").write_text(text)
    steps = load_plan(tmp_path / "plan.toml").jobs[0].steps
    assert [s.name for s in steps] == ["scf", "opt", "vmc", "dmc-tstep0.01", "dmc-tstep0.04"]
    assert [s.after for s in steps] == [None, "scf", "opt", "vmc", "vmc"]
    assert [s.options["tstep"] for s in steps[3:]] == [0.01, 0.04]


def test_bad_scan_template_names_the_field(tmp_path: Path) -> None:
    text = TINY_PLAN.replace('[[jobs]]\nid = "h2"\n', "") + (
        '[[scans]]\nid = "r{r}"\nvary = { r = [1.2] }\nscf = { atom = "H 0 0 0; H 0 0 {x.__class__}" }\n')
    (tmp_path / "plan.toml").write_text(text)
    with pytest.raises(PlanError, match="not one of the scan variables"):
        load_plan(tmp_path / "plan.toml")


def test_entries_met_again_are_copies_and_errors_still_name_their_job(tmp_path: Path) -> None:
    """Identical step entries (every job of a scan) are validated once; each job still gets its own Steps."""
    jobs = '[[jobs]]\nid = "a"\n[[jobs]]\nid = "b"\n'
    base = TINY_PLAN.replace('[[jobs]]\nid = "h2"\n', "")
    (tmp_path / "plan.toml").write_text(base + jobs)
    first, second = load_plan(tmp_path / "plan.toml").jobs
    assert first.steps[2] is not second.steps[2] and first.steps[2] == second.steps[2]
    assert first.steps[2].spec() == second.steps[2].model_dump(mode="json") and first.steps[2].after == "opt"
    (tmp_path / "plan.toml").write_text(base + jobs + '[[jobs]]\nid = "c"\nvmc = { nblocks = -3 }\n')
    with pytest.raises(PlanError, match="job 'c', step 'vmc'.*nblocks"):
        load_plan(tmp_path / "plan.toml")
    (tmp_path / "plan.toml").write_text(base.replace("nblocks = 12", "nblok = 12") + jobs)
    with pytest.raises(PlanError, match="job 'a', step 'vmc'.*nblok"):
        load_plan(tmp_path / "plan.toml")


def test_copied_foreach_steps_keep_their_own_after(tmp_path: Path) -> None:
    """A fanned-out first step gets ``after`` from the Job, per copy: a later job's copy is not changed."""
    scf = 'name = "scf"\n'
    text = TINY_PLAN.replace(scf, scf + 'foreach = { basis = ["sto-3g", "6-31g"] }\n', 1)
    text = text.replace('[[jobs]]\nid = "h2"\n', '[[jobs]]\nid = "a"\n[[jobs]]\nid = "b"\n')
    text = text.replace('name = "opt"\n', 'name = "opt"\nafter = "scf-basis6-31g"\n')
    (tmp_path / "plan.toml").write_text(text)
    for job in load_plan(tmp_path / "plan.toml").jobs:
        assert [s.after for s in job.steps[:2]] == [None, job.steps[0].name], job.id
        assert [s.spec()["after"] for s in job.steps[:2]] == [None, job.steps[0].name], job.id
