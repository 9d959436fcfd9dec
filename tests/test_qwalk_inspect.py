"""``inspect_run`` / ``format_table`` on the recorded real QWalk runs (tests/data/qwalk/cases)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from autogenv2.codes.qwalk import logparse as lp
from autogenv2.codes.qwalk.inspect import format_table, inspect_run
from autogenv2.codes.qwalk.reader import find_runs
from test_qwalk_reader import CASE_DIRS, CASES, EXPECTED, copy_case, gosling_json

# case -> (finished: QWalk ended normally with every block asked for, sufficient: enough for a reliable
# result, words of "finished_reason | sufficient_reason"). Cases not listed: failed before any result.
_ENOUGH = (True, True, ("QWalk ended normally",))
FINISHED_SUFFICIENT: dict[str, tuple[bool, bool, tuple[str, ...]]] = {
    **{c: (False, False, ()) for c in CASE_DIRS},
    # DMC drops at least 10 au (10 blocks at τ = 0.02), at most half its blocks (issue 14)
    "dmc_h2": (True, False, ("20 blocks of dmc", "9 degrees of freedom")),
    "dmc_h2_rerun_same_input": (True, False, ("16 blocks of dmc", "8 blocks after warm-up")),
    # QWalk finished its (default) 100 blocks: finished and enough -- but not the run the input asks for
    "fail_misspelled_keyword_ignored": (True, True, ("100 blocks of vmc",)),
    "fail_misspelled_keyword_ignored/linebuf": (True, True, ("100 blocks of vmc",)),
    "fail_dmc_not_enough_configs_h2": (False, False, ("Not enough configurations",
                                                      "METHOD 2 (DMC): no blocks")),
    # heavy-tailed blocks: their excess kurtosis leaves fewer than 10 degrees of freedom (errorbar.py)
    "killed_sigint_vmc_h2": (False, False, ("killed by SIGINT", "degrees of freedom")),
    "killed_sigkill_dmc_h2": (False, False, ("killed by SIGKILL", "7 blocks after warm-up")),
    "killed_sigterm_dmc_h2": (False, False, ("killed by SIGTERM", "7 blocks after warm-up")),
    "linear_h2": (True, True, ("converged",)),
    "linear_final_vmc_h2": (True, True, ("converged", "60 blocks of vmc")),
    "killed_sigterm_linear_final_vmc_h2": (False, False, ("killed by SIGTERM", "METHOD 2 (VMC), of the "
                                                                              "wave function LINEAR")),
    "opt_variance_h2": (True, True, ("METHOD 2 (OPTIMIZE): converged",)),
    "postprocess_h2_trace": (True, True, ("energy written",)),
    # 10 blocks: QWalk finished and min_blocks is met, but 9 degrees of freedom make no reliable error bar
    "pyscf_h2_pbc_gamma_vmc": (True, False, ("10 blocks of vmc", "not reliable")),
    "si_vmc_short": (True, False, ("10 blocks of vmc", "not reliable")),
    "pyscf_lih_ccecp_vmc_slater": _ENOUGH, "pyscf_lih_vmc_sj": _ENOUGH, "pyscf_lih_vmc_slater": _ENOUGH,
    "repo_h2_linear": (True, True, ("4 METHOD sections finished",)),
    "repo_h2_testder": (True, True, ("0 failed",)),
    "repo_si_vmc_111_blas": _ENOUGH,
    "repo_h_dmc": (True, False, ("80 blocks of dmc", "degrees of freedom")),  # heavy-tailed, as above
    "repo_h_vmc": (True, False, ("100 blocks of vmc", "degrees of freedom")),
    "vmc_h2_sj": (True, False, ("20 blocks of vmc", "degrees of freedom")),
    # finished, but fewer than min_blocks=10 blocks after warm-up: these are the Reader's "incomplete"
    "vmc_h2_large_errorbar": (True, False, ("4 blocks of vmc", "fewer than min_blocks=10")),
    "vmc_h2_randomseed/run1": (True, False, ("5 blocks of vmc", "fewer than min_blocks=10")),
    "vmc_h2_randomseed/run2": (True, False, ("5 blocks of vmc", "fewer than min_blocks=10")),
    "vmc_h2_single_block": (True, False, ("1 blocks of vmc", "fewer than min_blocks=10")),
}


@pytest.mark.parametrize("case", CASE_DIRS)
def test_report_shape_and_state(case: str, tmp_path: Path) -> None:
    directory = copy_case(case, tmp_path)
    report = inspect_run(directory)
    json.dumps(report, allow_nan=False)
    assert list(report) == ["runs"] and [r["run_id"] for r in report["runs"]] == find_runs(directory)
    for run in report["runs"]:
        assert list(run) == ["run_id", "state", "reason", "exit_code", "finished", "finished_reason",
                             "sufficient", "sufficient_reason", "methods"]
        assert run["state"] == EXPECTED[case][0] and all(w in run["reason"] for w in EXPECTED[case][1])
        finished, sufficient, words = FINISHED_SUFFICIENT[case]
        assert (run["finished"], run["sufficient"]) == (finished, sufficient), run
        assert all(w in run["finished_reason"] + " | " + run["sufficient_reason"] for w in words), run
        specs, _ = lp.parse_input(directory / run["run_id"], directory)
        if specs:  # one entry per METHOD section, in input order
            assert [m["method"] for m in run["methods"]] == [s.name.lower() for s in specs]
        for method in run["methods"]:
            assert list(method) == ["method", "energy", "error", "blocks"]
    text = format_table(report)
    assert all(f"{r['run_id']}: {r['state']}" in text for r in report["runs"]) or not report["runs"]


def test_vmc_then_failed_dmc_keeps_the_vmc_numbers(tmp_path: Path) -> None:
    directory = copy_case("fail_dmc_not_enough_configs_h2", tmp_path)
    run = inspect_run(directory)["runs"][0]
    vmc, dmc = run["methods"]
    gosling = gosling_json((directory / "gosling.json").read_text())[0]
    assert run["state"] == "failed" and "Not enough configurations" in run["reason"]
    assert vmc["method"] == "vmc" and vmc["blocks"] == 5 and abs(vmc["energy"] - gosling["energy"]) < 1e-6
    assert dmc == {"method": "dmc", "energy": None, "error": None, "blocks": 0}


def test_optimizations_report_every_section(tmp_path: Path) -> None:
    run = inspect_run(copy_case("repo_h2_linear", tmp_path))["runs"][0]
    assert [m["method"] for m in run["methods"]] == ["linear"] * 4
    assert [round(m["energy"], 6) for m in run["methods"]] == [-1.082736, -1.070825, -1.067558, -1.071119]
    assert all(m["blocks"] is None for m in run["methods"])


def test_stdout_and_exit_code_arguments(tmp_path: Path) -> None:
    directory = copy_case("killed_sigkill_dmc_h2", tmp_path)
    (directory / "run_meta.json").unlink()
    alone = inspect_run(directory)["runs"][0]  # files alone: no exit code, no 'Wall time' line
    assert alone["state"] == "incomplete" and "exit code unknown" in alone["reason"]
    killed = inspect_run(directory, run_id="qw.dmc", exit_code=-9)["runs"][0]
    assert killed["state"] == "incomplete" and "SIGKILL" in killed["reason"]
    assert killed["methods"][0]["blocks"] == 14

    failed = copy_case("fail_missing_orbfile", tmp_path)
    (failed / "run_meta.json").unlink()
    shutil.move(failed / "stdout.plain.txt", tmp_path / "captured.txt")
    alone = inspect_run(failed)["runs"][0]  # files alone: the input check names the cause
    assert alone["state"] == "failed" and "ORBFILE qw.orb is missing" in alone["reason"]
    assert alone["exit_code"] is None and not alone["finished"]
    without = inspect_run(failed, exit_code=0)["runs"][0]
    assert without["state"] == "failed" and "error text was not captured" in without["reason"]
    given = inspect_run(failed, stdout=tmp_path / "captured.txt", exit_code=0)["runs"][0]
    assert "Error   couldn't find orb file qw.orb" in given["reason"]


def test_directory_with_two_runs(tmp_path: Path) -> None:
    directory = copy_case("vmc_h2_sj", tmp_path)
    for name in ("qw.dmc", "qw.dmc.o", "qw.dmc.log"):
        shutil.copyfile(CASES / "dmc_h2" / name, directory / name)
    report = inspect_run(directory)
    assert [(r["run_id"], r["methods"][0]["method"]) for r in report["runs"]] == [("qw.dmc", "dmc"),
                                                                                   ("qw.vmc", "vmc")]
    assert [r["methods"][0]["blocks"] for r in report["runs"]] == [20, 20]
    assert [r["run_id"] for r in inspect_run(directory, run_id="qw.vmc")["runs"]] == ["qw.vmc"]


def test_format_table_for_nothing_and_missing_numbers() -> None:
    assert format_table({"runs": []}) == "no QWalk runs found"
    text = format_table({"runs": [{"run_id": "qw.opt", "state": "failed", "reason": "boom",
                                   "methods": [{"method": "optimize", "energy": None, "error": None,
                                                "blocks": None}]}]})
    first, _, row = text.splitlines()
    assert first == "qw.opt: failed - boom" and row.split() == ["1", "optimize", "-", "-", "-"]


def test_cli_inspect_json_and_table() -> None:
    """`autogenv2 inspect` on recorded runs: JSON shape, a killed run, and a failure's own words."""
    import json as _json
    import subprocess as _sp
    import sys as _sys

    cases = CASES

    def cli(*args: str) -> _sp.CompletedProcess[str]:
        return _sp.run([_sys.executable, "-m", "autogenv2.cli", "inspect", *args],
                       capture_output=True, text=True)

    report = _json.loads(cli(str(cases / "dmc_h2"), "--json").stdout)
    (run,) = report["runs"]
    assert run["run_id"] == "qw.dmc" and run["state"] == "complete"
    assert [m["method"] for m in run["methods"]] == ["dmc"] and run["methods"][0]["blocks"] == 20
    killed = _json.loads(cli(str(cases / "killed_sigkill_dmc_h2"), "--json", "--exit-code", "-9").stdout)
    assert killed["runs"][0]["state"] == "incomplete"
    failed = cli(str(cases / "fail_dmc_missing_timestep"))
    assert failed.returncode == 0 and "Need TIMESTEP" in failed.stdout
    missing = cli("/nonexistent/dir")
    assert missing.returncode == 1 and "not a directory" in missing.stdout
    assert "Traceback" not in missing.stdout
