"""Input lint, launcher exit markers and planned-block sufficiency of the QWalk Reader (issue 18).

Recorded real runs (tests/data/qwalk/cases) are the data; the marker test runs the real launcher
around the real QWalk when one is available.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autogenv2.codes.qwalk import METHODS, syntax
from autogenv2.codes.qwalk.inspect import inspect_run
from autogenv2.codes.qwalk.lint import FLAGS, SECTIONS, VALUED, lint_input, unknown_keywords
from autogenv2.codes.qwalk.reader import QWalkReader
from autogenv2.states import Verdict
from test_qwalk_reader import CASE_DIRS, CASES, EXPECTED, copy_case

LINTED = {  # case -> words of the lint finding (every recorded input error QWalk's files alone can show)
    "fail_dmc_missing_timestep": "DMC needs TIMESTEP",
    "fail_linear_optimizebasis_h2": "OPTIMIZEBASIS",
    "fail_missing_include": "INCLUDE qw.sys.missing: file not found",
    "fail_missing_orbfile": "ORBFILE qw.orb is missing",
    "fail_misspelled_keyword_ignored": "unknown keyword 'nblok' (did you mean 'nblock'?)",
    "fail_no_system_section": "no SYSTEM section",
    "fail_optimize_no_parameters": "nothing to optimize",
    "fail_sigfpe_one_sample_per_block": "nconfig*nstep is 1",
    "fail_syntax_unbalanced_brace": "unbalanced braces",
    "fail_unknown_method": "unknown method 'vmcc' (did you mean 'vmc'?)",
}


@pytest.mark.parametrize("case", CASE_DIRS)
def test_lint_finds_exactly_the_broken_inputs(case: str) -> None:
    directory = CASES / case
    runs = [p.name[:-2] for p in directory.glob("*.o")] or ["qw.doesnotexist"]
    findings = [f for run in runs for f in lint_input(directory, run)]
    expected = LINTED.get(case.split("/")[0])
    if expected is None:
        assert findings == [], case
    else:
        assert any(expected in str(f) for f in findings), findings


@pytest.mark.parametrize("case", sorted(c for c in CASE_DIRS if c.split("/")[0] in LINTED))
def test_files_alone_an_input_failure_is_failed_not_incomplete(case: str, tmp_path: Path) -> None:
    """Without stdout, stderr or exit code a broken input used to read 'incomplete (exit code unknown)'."""
    directory = copy_case(case, tmp_path)
    for name in ("run_meta.json", "stdout.txt", "stderr.txt", "stdout.plain.txt"):
        (directory / name).unlink(missing_ok=True)
    (run,) = inspect_run(directory)["runs"]
    assert run["state"] == "failed" and LINTED[case.split("/")[0]] in run["reason"], run
    assert run["exit_code"] is None and run["finished"] is case.startswith("fail_misspelled")


def test_misspelt_keywords_fail_the_reader_and_inspect(tmp_path: Path) -> None:
    directory = copy_case("fail_misspelled_keyword_ignored", tmp_path)
    result = QWalkReader().read(directory, 0)
    assert result.verdict is Verdict.failed and "'timestpe' (did you mean 'timestep'?)" in result.reason
    (run,) = inspect_run(directory)["runs"]
    assert (run["state"], run["finished"], run["sufficient"]) == ("failed", True, True)
    assert EXPECTED["fail_misspelled_keyword_ignored"][0] == "failed"


def test_every_keyword_our_writers_write_is_one_qwalk_reads() -> None:
    """The lint tables (from QWalk's sources) know every keyword and flag of our Writers."""
    checked = 0
    for method, (writer, _) in METHODS.items():
        kind = method.upper()
        if kind not in VALUED:
            continue
        for name in (*getattr(writer, "keywords", ()), *getattr(writer, "flags", ())):
            assert name.upper() in VALUED[kind] | FLAGS[kind] | SECTIONS[kind], (method, name)
            checked += 1
    assert checked > 30


def test_unknown_keyword_suggestions_and_values() -> None:
    method = syntax.parse("method { dmc timestep 0.02 tmovs nconfg 10 low_io average { sk } densty { } }")
    assert unknown_keywords("DMC", method.section("method")) == [
        "'tmovs' (did you mean 'tmoves'?)", "'nconfg' (did you mean 'nconfig'?)",
        "section 'densty' (did you mean 'density'?)"]


@pytest.mark.skipif(shutil.which("qwalk") is None and not os.environ.get("AUTOGENV2_QWALK"),
                    reason="needs a QWalk binary: qwalk on PATH or $AUTOGENV2_QWALK")
def test_inspect_reads_the_launchers_exit_marker(tmp_path: Path) -> None:
    """The real launcher stops a real QWalk VMC at its walltime; inspect takes the code from the marker."""
    directory = copy_case("vmc_h2_sj", tmp_path)
    for name in ("run_meta.json", "qw.vmc.o", "qw.vmc.log", "qw.vmc.json", "qw.vmc.config", "stdout.txt",
                 "qw.vmc.config.backup", "gosling.json", "gosling.out", "meta.gosling.json", "stderr.txt"):
        (directory / name).unlink(missing_ok=True)
    text = (directory / "qw.vmc").read_text()
    (directory / "qw.vmc").write_text(text.replace("nblock 20", "nblock 100000"))
    qwalk = os.environ.get("AUTOGENV2_QWALK") or str(shutil.which("qwalk"))
    with open(directory / "stdout.txt", "w") as out:
        subprocess.run([sys.executable, "-m", "autogenv2.runners.launch", "tok1", "--walltime", "2", "--",
                        qwalk, "qw.vmc"], cwd=directory, stdout=out, stderr=subprocess.STDOUT, timeout=60)
    assert (directory / ".autogenv2" / "tok1.exit").is_file()
    (run,) = inspect_run(directory)["runs"]
    assert run["exit_code"] == -15 and run["state"] == "incomplete", run
    assert "killed by SIGTERM" in run["reason"] and "exit code unknown" not in run["reason"]
    assert run["finished"] is False and run["methods"][0]["blocks"] > 0
