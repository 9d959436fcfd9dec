"""QWalkReader and logparse against every recorded real QWalk run in tests/data/qwalk/cases.

gosling (QWalk's own analysis, run on each case's .log) is the oracle for the numbers:
* energy, warm-up blocks, block count and sigma^2 must equal gosling's (energy to 1e-6 Ha);
* the error bar must agree within 5 %, or else the test states why. It almost never does, for one
  reason, checked exactly: gosling reports the plain standard error of the block means divided by
  N (sqrt(sum w_b (E_b - E)^2 / N)), while the Reader publishes errorbar.publish (the reblocked
  error of stats.estimate where the blocks show correlation, else the plain one, N-1 convention,
  with a small-sample factor). So the test asserts that our *unreblocked* level reproduces gosling's
  error to 1e-6 (relative) after the N -> N-1 conversion, i.e. that the only difference is
  our error rule. With one block gosling reports 0 and we report None (no error bar).
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from autogenv2 import errorbar, stats
from autogenv2.codes.qwalk import logparse as lp
from autogenv2.codes.qwalk.reader import QWalkReader, find_runs, find_streams, gosling_warmup, summarize
from autogenv2.errors import OptionError
from autogenv2.states import Verdict
from conftest import QWALK_CASES

CASES = QWALK_CASES
CASE_DIRS = sorted(str(p.parent.relative_to(CASES)) for p in CASES.rglob("run_meta.json"))

# case -> (verdict, words the reason must contain, retry); every case folder must be listed here.
EXPECTED: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "dmc_h2": ("complete", ("DMC", "20 complete blocks"), False),
    "dmc_h2_rerun_same_input": ("incomplete", ("8 blocks after warm-up", "min_blocks=10"), False),  # 10 au
    "fail_dmc_missing_timestep": ("failed", ("Error   Need TIMESTEP in METHOD section",), False),
    "fail_dmc_missing_timestep/linebuf": ("failed", ("Error   Need TIMESTEP in METHOD section",), False),
    "fail_dmc_not_enough_configs_h2": ("failed", ("METHOD 2 (DMC)",
                                                  "Not enough configurations in qw.vmcdmc.config"), False),
    "fail_linear_optimizebasis_h2": (
        "failed", ("OPTIMIZEBASIS", "Wavefunction needs to supports analytic parameter derivatives"), False),
    "fail_missing_include": ("failed", ("SIGABRT", "terminate called", "stdbuf"), False),
    "fail_missing_include/linebuf": ("failed", ("SIGABRT", "Error   couldn't open qw.sys.missing"),
                                     False),
    "fail_missing_input_file": ("failed", ("SIGABRT", "nothing written", "qw.doesnotexist.o"), False),
    "fail_missing_input_file/linebuf": ("failed", ("nothing written",
                                                   "Error   Couldn't open qw.doesnotexist"), False),
    "fail_missing_orbfile": ("failed", ("Error   couldn't find orb file qw.orb",), False),
    "fail_missing_orbfile/linebuf": ("failed", ("Error   couldn't find orb file qw.orb",), False),
    # QWalk ignores misspelled keywords and runs with defaults: nothing in its outputs says so, but
    # the input, read with our own syntax (lint.py), does.
    "fail_misspelled_keyword_ignored": ("failed", ("unknown keyword 'nblok' (did you mean 'nblock'?)",
                                                   "'timestpe' (did you mean 'timestep'?)", "defaults"),
                                        False),
    "fail_misspelled_keyword_ignored/linebuf": ("failed", ("unknown keyword 'nblok'", "'timestpe'"), False),
    "fail_no_system_section": ("failed", ("SIGABRT", "while reading the input"), False),
    "fail_no_system_section/linebuf": ("failed", ("SIGABRT", "Error   missing system section"), False),
    "fail_optimize_no_parameters": ("failed", ("Error   There appear to be no parameters to optimize!",),
                                    False),
    "fail_optimize_no_parameters/linebuf": ("failed", ("There appear to be no parameters to optimize!",),
                                            False),
    "fail_segfault_postprocess_O2build": ("failed", ("SIGSEGV", "POSTPROCESS"), False),
    "fail_sigfpe_one_sample_per_block": ("failed", ("SIGFPE", "nconfig*nstep == 1"), False),
    "fail_syntax_unbalanced_brace": ("failed", ("SIGABRT",
                                                "you have unbalance brackets: 30 open  and 29 close"), False),
    "fail_syntax_unbalanced_brace/linebuf": ("failed", ("Error   The open and close brackets don't match.",),
                                             False),
    "fail_unknown_method": ("failed", ("unknown keyword vmcc",), False),
    "fail_unknown_method/linebuf": ("failed", ("unknown keyword vmcc",), False),
    "fail_unknown_wavefunction": ("failed", ("unknown keyword slater-jastrowx",), False),
    "fail_unknown_wavefunction/linebuf": ("failed", ("unknown keyword slater-jastrowx",), False),
    "gosling_edge_cases": ("failed", ("nothing written", "no QWalk run"), False),
    "killed_sigint_vmc_h2": ("incomplete", ("killed by SIGINT", "58 complete blocks"), True),
    "killed_sigkill_dmc_h2": ("incomplete", ("killed by SIGKILL", "14 complete blocks"), True),
    "killed_sigterm_dmc_h2": ("incomplete", ("killed by SIGTERM", "14 complete blocks"), True),
    "killed_sigterm_linear_final_vmc_h2": ("incomplete", ("killed by SIGTERM", "METHOD 2 (VMC)",
                                                          "after 3 iterations"), True),
    "linear_h2": ("complete", ("LINEAR", "converged after 4 iterations"), False),
    "linear_final_vmc_h2": ("complete", ("METHOD 1 (LINEAR)", "converged after 3 iterations"), False),
    "opt_variance_h2": ("complete", ("OPTIMIZE", "converged after 20 iterations"), False),
    "postprocess_h2_trace": ("complete", ("POSTPROCESS",), False),
    "pyscf_h2_pbc_gamma_vmc": ("complete", ("10 complete blocks",), False),
    "pyscf_lih_ccecp_vmc_slater": ("complete", ("20 complete blocks",), False),
    "pyscf_lih_vmc_sj": ("complete", ("20 complete blocks",), False),
    "pyscf_lih_vmc_slater": ("complete", ("20 complete blocks",), False),
    "repo_h2_linear": ("complete", ("METHOD 4 (LINEAR)", "8 iterations"), False),
    "repo_h2_testder": ("complete", ("TEST",), False),
    "repo_h_dmc": ("complete", ("80 complete blocks",), False),
    "repo_h_vmc": ("complete", ("100 complete blocks",), False),
    "repo_si_vmc_111_blas": ("complete", ("100 complete blocks",), False),
    "si_vmc_short": ("complete", ("10 complete blocks",), False),
    "vmc_h2_large_errorbar": ("incomplete", ("4 blocks after warm-up", "min_blocks=10"), False),
    "vmc_h2_randomseed/run1": ("incomplete", ("5 blocks after warm-up",), False),
    "vmc_h2_randomseed/run2": ("incomplete", ("5 blocks after warm-up",), False),
    "vmc_h2_single_block": ("incomplete", ("1 blocks after warm-up",), False),
    "vmc_h2_sj": ("complete", ("20 complete blocks",), False),
}


def copy_case(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name.replace("/", "__")
    shutil.copytree(CASES / name, target)
    return target


def read_case(name: str, tmp_path: Path, **options: object) -> tuple[Path, object]:
    directory = copy_case(name, tmp_path)
    runs = find_runs(directory)
    code = find_streams(directory, runs[0])[2] if runs else None
    return directory, QWalkReader(**options).read(directory, code)


# ------------------------------------------------------------------------------ gosling output

def gosling_json(text: str) -> list[dict]:
    """gosling -json output: objects back to back, with bare inf/nan (not valid JSON)."""
    text = re.sub(r"(?<=[\[:,])(\s*-?)inf\b", r"\1Infinity", text).replace(":nan", ":NaN").strip()
    decoder, found, pos = json.JSONDecoder(), [], 0
    while pos < len(text):
        obj, pos = decoder.raw_decode(text, pos)
        energy = obj["properties"]["total_energy"]
        found.append({"label": obj["label"], "blocks": obj["total blocks"], "warmup": obj["warmup blocks"],
                      "energy": energy["value"][0], "error": energy["error"][0], "sigma": energy["sigma"][0]})
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return found


GOSLING_TEXT = re.compile(r"(\S+):\s+(\d+) total blocks reblocked into \d+\s+#+\s+"
                          r"Threw out the first (\d+) blocks"
                          r".*?\s+total_energy0\s+(\S+) \+/-\s+(\S+) \(sigma\s+(\S+) \)", re.S)


def gosling_text(text: str) -> list[dict]:
    return [{"label": m[0], "blocks": int(m[1]), "warmup": int(m[2]), "energy": float(m[3]),
             "error": float(m[4]), "sigma": float(m[5])} for m in GOSLING_TEXT.findall(text)]


def check_against_gosling(series: lp.Series, gosling: dict, warmup: int | None = None) -> None:
    ours = summarize(series, warmup)
    assert ours["blocks"] == gosling["blocks"]
    assert ours["warmup"] == gosling["warmup"]
    assert abs(ours["energy"] - gosling["energy"]) < 1e-6
    assert math.sqrt(ours["variance"]) == pytest.approx(gosling["sigma"], rel=1e-6)
    if gosling["error"] == 0:  # one block: gosling prints 0, we have no error bar at all
        assert ours["blocks"] - ours["warmup"] == 1 and ours["error"] is None
        return
    if abs(ours["error"] - gosling["error"]) <= 0.05 * gosling["error"]:
        return
    # Stated reason (module docstring): the difference is only our reblocking + the N-1 convention.
    used, w = slice(ours["warmup"], None), series.totweight[ours["warmup"]:]
    level0 = stats.reblock(series.energy[used], w)[0].error
    n_eff = w.sum() ** 2 / np.sum(w * w)
    assert level0 * math.sqrt((n_eff - 1) / w.size) == pytest.approx(gosling["error"], rel=1e-6)
    tails = None if series.energyvar is None else series.energyvar[used]
    published = errorbar.publish(series.energy[used], w, sample_variance=tails)
    assert ours["error"] == pytest.approx(published.error,
                                          rel=1e-12)
    assert ours["error_reblocked"] == pytest.approx(stats.estimate(series.energy[used], w).error, rel=1e-12)


GOSLING_CASES = [c for c in CASE_DIRS if (CASES / c / "gosling.json").is_file()]


@pytest.mark.parametrize("case", GOSLING_CASES)
def test_energy_matches_gosling(case: str, tmp_path: Path) -> None:
    directory = copy_case(case, tmp_path)
    expected = gosling_json((directory / "gosling.json").read_text())
    log = lp.parse_log(next(directory.glob("*.log")))
    assert sorted(log.series) == sorted(g["label"] for g in expected)
    for gosling in expected:
        check_against_gosling(log.series[gosling["label"]], gosling)
    result = QWalkReader().read(directory, find_streams(directory, find_runs(directory)[0])[2])
    target = [g for g in expected if g["label"] == result.results.get("method")]
    if target and result.results.get("energy") is not None:
        cut = int(result.results["warmup"])
        if cut == target[0]["warmup"]:
            assert abs(result.results["energy"] - target[0]["energy"]) < 1e-6
        else:  # a DMC whose 10 au floor is longer than gosling's cut (gosling -no_equil on the rest: below)
            series = log.series[target[0]["label"]]
            assert result.results["method"] == "dmc" and target[0]["warmup"] < cut <= series.nblocks // 2
            w = series.totweight[cut:]
            assert result.results["energy"] == pytest.approx(w @ series.energy[cut:] / w.sum(), abs=1e-9)


def edge_commands() -> list[tuple[str, str]]:
    if not (CASES / "gosling_edge_cases" / "run_meta.json").is_file():
        return []
    meta = json.loads((CASES / "gosling_edge_cases" / "run_meta.json").read_text())
    # -reblock is gosling's own regrouping (not offered); the truncated log is tested below.
    return [(e["command"], e["stdout"]) for e in meta
            if e["returncode"] == 0 and e["command"].endswith(".log")
            and "-reblock" not in e["command"] and "truncated" not in e["command"]]


@pytest.mark.parametrize("command,stdout", edge_commands())
def test_gosling_edge_cases(command: str, stdout: str) -> None:
    words, folder = command.split(), CASES / "gosling_edge_cases"
    text = (folder / stdout).read_text()
    expected = gosling_json(text) if "-json" in words else gosling_text(text)
    if "-label" in words:
        expected = [g for g in expected if g["label"] == words[words.index("-label") + 1]]
    log = lp.parse_log(folder / words[-1])
    if not (folder / words[-1]).is_file() or not log.series:
        assert expected == [] and log.series == {}
        return
    assert expected
    for gosling in expected:
        check_against_gosling(log.series[gosling["label"]], gosling, 0 if "-no_equil" in words else None)


def test_block_cut_mid_write_is_dropped(tmp_path: Path) -> None:
    folder = CASES / "gosling_edge_cases"
    cut = lp.parse_log(folder / "truncated_mid_block.derived.log").series["dmc"]
    full = lp.parse_log(folder / "dmc_20_blocks.log").series["dmc"]
    assert cut.nblocks == 5 and np.array_equal(cut.energy, full.energy[:5])
    gosling = gosling_text((folder / "stdout.truncated.txt").read_text())[0]
    assert gosling["blocks"] == 6  # gosling silently used the broken 6th block; we do not
    assert abs(summarize(cut)["energy"] - gosling["energy"]) > 1e-4
    # in a run directory: a run killed while writing block 6 counts 5 blocks
    directory = copy_case("killed_sigkill_dmc_h2", tmp_path)
    shutil.copyfile(folder / "truncated_mid_block.derived.log", directory / "qw.dmc.log")
    result = QWalkReader().read(directory, -9)
    assert result.verdict is Verdict.incomplete and result.results["blocks"] == 5
    # the DMC warm-up floor takes half of 5 blocks: 2 + min_blocks 10 asked for
    assert "5 complete blocks" in result.reason and result.results["warmup"] == 2
    assert result.more == {"nblock": 12}


# ------------------------------------------------------------------------------------- verdicts

def test_every_case_is_classified() -> None:
    assert sorted(EXPECTED) == CASE_DIRS or not CASE_DIRS


@pytest.mark.parametrize("case", CASE_DIRS)
def test_verdict_and_reason(case: str, tmp_path: Path) -> None:
    verdict, words, retry = EXPECTED[case]
    directory, result = read_case(case, tmp_path)
    assert result.verdict.value == verdict, result.reason
    for word in words:
        assert word in result.reason
    assert result.retry is retry
    json.dumps(result.model_dump(mode="json"), allow_nan=False)
    if verdict == "complete" and result.results["method"] in ("vmc", "dmc"):
        run = find_runs(directory)[0]
        expected = {"config": f"{run}.config"}
        if (directory / f"{run}.trace").is_file():  # DMC with SAVE_TRACE feeds POSTPROCESS
            expected["qwalk_trace"] = f"{run}.trace"
        assert result.outputs == expected
    if result.results.get("method") in ("linear", "optimize") and verdict != "failed":
        assert (directory / result.outputs["wavefunction"]).is_file()


@pytest.mark.parametrize("case,exit_code,verdict,words", [
    ("killed_sigkill_dmc_h2", 137, "incomplete", "killed by SIGKILL"),      # shell convention 128+9
    ("killed_sigterm_dmc_h2", None, "incomplete", "has not finished after 14 complete blocks"),
    ("killed_sigterm_dmc_h2", 0, "failed", "did not finish"),
    ("fail_sigfpe_one_sample_per_block", 136, "failed", "SIGFPE"),
    ("dmc_h2", None, "complete", "finished"),
    ("fail_unknown_method", None, "failed", "unknown keyword vmcc"),
    ("dmc_h2", 1, "failed", "exited with code 1"),
])
def test_exit_code_variants(case: str, exit_code: int | None, verdict: str, words: str,
                            tmp_path: Path) -> None:
    result = QWalkReader().read(copy_case(case, tmp_path), exit_code)
    assert result.verdict.value == verdict and words in result.reason


def test_killed_blocks_count_and_merge_with_rerun(tmp_path: Path) -> None:
    _, killed = read_case("killed_sigkill_dmc_h2", tmp_path)
    assert killed.results["blocks"] == 14 and killed.outputs == {"config": "qw.dmc.config"}
    _, rerun = read_case("dmc_h2_rerun_same_input", tmp_path)
    assert rerun.results["blocks"] == 16 and rerun.results["warmup"] == 8  # 8 + 8, cut once: half, not 10 au
    first = lp.parse_log(CASES / "dmc_h2_rerun_same_input" / "qw.dmc.log.after_run1").series["dmc"]
    both = lp.parse_log(CASES / "dmc_h2_rerun_same_input" / "qw.dmc.log").series["dmc"]
    assert np.array_equal(both.energy[:8], first.energy) and list(np.bincount(both.section)) == [8, 8]


def test_target_error_asks_for_more_blocks(tmp_path: Path) -> None:
    _, loose = read_case("dmc_h2", tmp_path / "a", target_error=0.01)
    assert loose.verdict is Verdict.complete
    _, tight = read_case("dmc_h2", tmp_path / "b", target_error=0.001)
    err = tight.results["error"]
    assert tight.verdict is Verdict.incomplete and f"error {err:.2e}" in tight.reason
    series = lp.parse_log(tmp_path / "b" / "dmc_h2" / "qw.dmc.log").series["dmc"]
    cut = tight.results["warmup"]
    pub = errorbar.publish(series.energy, series.totweight, cut, sample_variance=series.energyvar)
    total, _ = stats.samples_to_target(pub.estimate,
                                       stats.precision(series.energy, series.totweight, cut), 0.001)
    assert total > 19 and tight.more == {"nblock": cut + total}
    assert tight.results["error_bound"] > 0 and "_wanted" not in tight.results
    _, few = read_case("vmc_h2_sj", tmp_path / "c", min_blocks=30)
    assert few.verdict is Verdict.incomplete and few.more == {"nblock": 30}


def test_warmup_and_method_options(tmp_path: Path) -> None:
    directory, result = read_case("dmc_h2", tmp_path, warmup=5)
    series = lp.parse_log(directory / "qw.dmc.log").series["dmc"]
    assert result.results["warmup"] == 5 and result.results["blocks"] == 20
    expected = np.average(series.energy[5:], weights=series.totweight[5:])
    assert result.results["energy"] == pytest.approx(expected, rel=1e-12)
    assert gosling_warmup(series.energy) == 1
    _, linear = read_case("repo_h2_linear", tmp_path / "x", method="linear")
    assert linear.verdict is Verdict.complete and len(linear.results["iterations"]) == 8
    assert linear.results["energy"] == pytest.approx(-1.071119061)
    _, wrong = read_case("repo_h2_linear", tmp_path / "y", method="vmc")
    assert wrong.verdict is Verdict.failed and "no vmc METHOD section" in wrong.reason


def test_options_are_validated() -> None:
    with pytest.raises(OptionError, match="method"):
        QWalkReader.build("step dmc", {"method": "dmcc"})
    with pytest.raises(OptionError, match="unknown option"):
        QWalkReader.build("step dmc", {"nblocks": 3})
    reader = QWalkReader(run_id="qw.dmc", target_error=0.002, warmup=2)
    assert QWalkReader(**reader.model_dump()) == reader


def test_several_runs_need_run_id(tmp_path: Path) -> None:
    directory = copy_case("vmc_h2_sj", tmp_path)
    for name in ("qw.dmc", "qw.dmc.o", "qw.dmc.log"):
        shutil.copyfile(CASES / "dmc_h2" / name, directory / name)
    assert find_runs(directory) == ["qw.dmc", "qw.vmc"]
    with pytest.raises(OptionError, match="set run_id"):
        QWalkReader().read(directory, 0)
    assert QWalkReader(run_id="qw.dmc").read(directory, 0).results["blocks"] == 20


def test_json_records_when_log_is_gone(tmp_path: Path) -> None:
    directory = copy_case("vmc_h2_sj", tmp_path)
    with_log = QWalkReader().read(directory, 0).results
    (directory / "qw.vmc.log").unlink()
    without = QWalkReader().read(directory, 0).results
    assert without["blocks"] == 20 and without["energy"] == pytest.approx(with_log["energy"], abs=1e-4)


# ----------------------------------------------------------------------------------- logparse

def test_input_words_and_methods(tmp_path: Path) -> None:
    (tmp_path / "qw.sys").write_text("SYSTEM { MOLECULE NSPIN { 1 1 } }\nmethod { vmc }  # not counted\n")
    (tmp_path / "qw.in").write_text("RUNID other # comment { \n"
                                    "method{ VMC nblock 5 label v1 average { gr } }\n"
                                    "include qw.sys\nMETHOD { dmc timestep 0.02 } trialfunc { slater }\n")
    methods, runid = lp.parse_input(tmp_path / "qw.in", tmp_path)
    assert [m.name for m in methods] == ["VMC", "VMC", "DMC"] and runid == "other"
    assert methods[0].get("nblock") == "5" and methods[0].get("label") == "v1"
    assert methods[0].get("GR") is None  # deeper sections are not keywords of the method
    assert methods[2].get("TIMESTEP") == "0.02"


def test_streams_use_last_attempt_only() -> None:
    first = "output to qw.vmc.o\nError   couldn't find orb file qw.orb\nCaught qmc_error\n"
    assert lp.parse_streams(first, "", "qw.vmc").errors == ["couldn't find orb file qw.orb"]
    report = lp.parse_streams(first + "output to qw.vmc.o\nSystem\n", "", "qw.vmc")
    assert report.errors == [] and not report.caught


def test_output_report_of_optimizers() -> None:
    linear = lp.parse_output(CASES / "linear_h2" / "qw.linear.o")
    assert [m.kind for m in linear.methods] == ["LINEAR"] and linear.finished == 1
    assert linear.methods[0].steps[-1] == (-1.1714744, 0.001610928418)
    opt = lp.parse_output(CASES / "opt_variance_h2" / "qw.opt.o")
    assert [len(m.dispersions) for m in opt.methods] == [10, 10] and opt.methods[1].nconfig == 500
    killed = lp.parse_output(CASES / "killed_sigkill_dmc_h2" / "qw.dmc.o")
    assert [(m.kind, m.finished) for m in killed.methods] == [("DMC", False)]


# --------------------------------------------------------------------------- damaged files

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 9911), insert_at=st.integers(0, 9911), junk=st.binary(max_size=64),
       garble_o=st.booleans())
def test_damaged_files_give_a_clean_verdict(tmp_path: Path, cut: int, insert_at: int, junk: bytes,
                                             garble_o: bool) -> None:
    directory = tmp_path / "run"
    if not directory.exists():
        shutil.copytree(CASES / "dmc_h2", directory)
    text = (CASES / "dmc_h2" / "qw.dmc.log").read_bytes()[:cut]
    (directory / "qw.dmc.log").write_bytes(text[:insert_at] + junk + text[insert_at:])
    out = (CASES / "dmc_h2" / "qw.dmc.o").read_bytes()
    (directory / "qw.dmc.o").write_bytes(out[:cut] + junk + out[cut:] if garble_o else out)
    log = lp.parse_log(directory / "qw.dmc.log")
    assert sum(s.nblocks for s in log.series.values()) <= 20
    for code in (0, -9, None):
        result = QWalkReader().read(directory, code)
        assert result.verdict in Verdict
        json.dumps(result.model_dump(mode="json"), allow_nan=False)


def test_chunked_reading_matches_whole_file(tmp_path: Path) -> None:
    block = ("block { \n   label vmc\n   totweight 10\n   nautocorr 0\n   total_energy { %r   } \n"
             "   total_energyvar { 0.5   } \n   autocorr_energy { } \n} \n\n")
    head = "#------\n#VMC run: timestep 1\n#------\n\n\ninit { \n   label vmc\n}\n"
    text = head + "".join(block % (-1.0 - i / 1000) for i in range(300))
    text += head.replace("VMC", "DMC").replace("vmc", "dmc") + (block % -2.0).replace("vmc", "dmc")
    text += block[:40]  # cut while being written
    (tmp_path / "x.log").write_text(text)
    small = lp.parse_log(tmp_path / "x.log", chunk_bytes=257)
    whole = lp.parse_log(tmp_path / "x.log")
    assert small.series["vmc"].nblocks == 300 and small.series["dmc"].nblocks == 1
    assert np.array_equal(small.series["vmc"].energy, whole.series["vmc"].energy)
    assert small.dropped == whole.dropped == 1 and [s.kind for s in small.sections] == ["VMC", "DMC"]


def test_unreadable_numbers_drop_their_block(tmp_path: Path) -> None:
    block = ("block { \n   label vmc\n   totweight 10\n   nautocorr 0\n   total_energy { %s   } \n"
             "   total_energyvar { 0.5   } \n   autocorr_energy { } \n} \n\n")
    (tmp_path / "x.log").write_text(block % "-1.5" + block % "-1.x5" + block % "nan" + block % "-1.25")
    data = lp.parse_log(tmp_path / "x.log")
    energy = data.series["vmc"].energy
    assert data.dropped == 1 and energy.size == 3 and np.isnan(energy[1]) and energy[2] == -1.25


def find_gosling() -> str | None:
    for candidate in (os.environ.get("AUTOGENV2_GOSLING"), shutil.which("gosling"), "/opt/qwalk/bin/gosling"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.mark.skipif(find_gosling() is None,
                    reason="no gosling binary ($AUTOGENV2_GOSLING, PATH, /opt/qwalk/bin)")
def test_live_gosling_on_a_spliced_log(tmp_path: Path) -> None:
    """Appended DMC runs interleaved with a VMC label, checked against the real gosling."""
    dmc = (CASES / "dmc_h2" / "qw.dmc.log").read_bytes()
    vmc = (CASES / "vmc_h2_sj" / "qw.vmc.log").read_bytes()
    (tmp_path / "x.log").write_bytes(dmc + vmc + dmc[: dmc.index(b"block {", 3000)] + dmc)  # 20+6+20 DMC
    out = subprocess.run([str(find_gosling()), "-json", "x.log"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    log = lp.parse_log(tmp_path / "x.log")
    expected = gosling_json(out)
    assert sorted(g["label"] for g in expected) == ["dmc", "vmc"] and log.series["dmc"].nblocks == 46
    for gosling in expected:
        check_against_gosling(log.series[gosling["label"]], gosling)


def drop_blocks(log: bytes, k: int) -> bytes:
    """The log without its first ``k`` blocks (its header and ``init`` section kept)."""
    starts = [m.start() for m in re.finditer(rb"block \{", log)]
    return log[:starts[0]] + log[starts[k]:]


@pytest.mark.skipif(find_gosling() is None,
                    reason="no gosling binary ($AUTOGENV2_GOSLING, PATH, /opt/qwalk/bin)")
def test_dmc_warmup_against_live_gosling(tmp_path: Path) -> None:
    """A DMC drops at least 10 au (issue 14): the recorded 20-block τ = 0.02 run loses 10 blocks, and its
    energy is gosling's -no_equil on the log without them; gosling's own cut there is shorter."""
    directory = copy_case("dmc_h2", tmp_path / "case")
    result = QWalkReader().read(directory, find_streams(directory, find_runs(directory)[0])[2])
    full = (directory / "qw.dmc.log").read_bytes()
    assert gosling_warmup(lp.parse_log(directory / "qw.dmc.log").series["dmc"].energy) < 10
    assert result.results["method"] == "dmc" and result.results["blocks"] == 20
    assert result.results["warmup"] == 10
    (tmp_path / "rest.log").write_bytes(drop_blocks(full, 10))
    out = subprocess.run([str(find_gosling()), "-json", "-no_equil", "rest.log"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    gosling = gosling_json(out)[0]
    assert gosling["blocks"] == 10 and gosling["warmup"] == 0
    assert abs(result.results["energy"] - gosling["energy"]) < 1e-6



def test_an_optimizers_energy_is_its_final_vmc_of_the_wavefunction_handed_on(tmp_path: Path) -> None:
    """LINEAR's last ``current energy`` belongs to the parameters before its last step; the element's energy
    is the VMC section after it (the LinearWriter's), read as any VMC, which a kill makes LINEAR's to redo."""
    from autogenv2.codes.qwalk.verdict import load_run, method_results

    _, done = read_case("linear_final_vmc_h2", tmp_path, run_id="qw.linear")
    run = load_run(CASES / "linear_final_vmc_h2", "qw.linear")
    vmc, _ = method_results(run, 1, None)
    assert vmc["blocks"] == 60 and vmc["energy"] is not None
    results = done.results
    assert (results["energy"], results["error"]) == (vmc["energy"], vmc["error"])
    assert results["energy_of"] == "a VMC of the final parameters" and results["final_vmc_blocks"] == 60
    assert results["iterations"][-1]["energy"] == -1.178126938 != results["energy"]
    assert done.outputs == {"wavefunction": "qw.linear.wfout"}
    _, alone = read_case("linear_final_vmc_h2", tmp_path / "as-vmc", run_id="qw.linear", method="vmc")
    assert alone.results["energy"] == vmc["energy"] and "energy_of" not in alone.results
    _, killed = read_case("killed_sigterm_linear_final_vmc_h2", tmp_path, run_id="qw.linear")
    assert killed.more == {"iterations": 3} and killed.retry  # LINEAR's continuation, not the VMC's nblock
    assert killed.results["energy"] == -1.178126938 and "energy_of" not in killed.results
