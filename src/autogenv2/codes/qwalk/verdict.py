"""The verdict on one QWalk run (one input file): complete / incomplete / failed, with its numbers.

How a QWalk run ends (FORMAT.md §0, §9): a method finished iff the ``.o`` has its
``Wall time for this method`` line; exit code 0 does not mean success (``Error …`` +
``Caught qmc_error`` on stdout); input errors abort (SIGABRT); kills leave only complete blocks.

Energies come from the ``.log`` blocks of the method's label, all appended attempts merged into one
series, warm-up removed once from its start, estimate and verdict from :mod:`autogenv2.sampling`
weighted by each block's ``totweight`` (as gosling weights). The automatic warm-up is gosling's
own rule (:func:`.estimates.gosling_warmup`), so a VMC energy equals gosling's; a DMC drops at least
10 au of projection time (:func:`.estimates.dmc_warmup`, at most half its blocks), so its energy equals
gosling's ``-no_equil`` on the blocks after that cut when gosling's own cut is shorter. The error bar is our
reblocked one, while gosling reports the plain standard error of the block means (divided by N, not N-1).

Plain data and numpy only (no pydantic): :class:`.reader.QWalkReader` hands its options over as
:class:`Settings` and turns the :class:`Outcome` into its ReadResult; ``autogenv2 inspect`` uses
:class:`Settings` as it is, the Reader's defaults.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ... import sampling
from ...states import Verdict
from ...stats import finite_or_none
from . import lint, logparse as lp
from .estimates import CONVERGENCE_SIGMAS, dmc_warmup, linear_converged, optimize_converged, sample

SAMPLING = ("VMC", "DMC")
OPTIMIZERS = ("OPTIMIZE", "LINEAR")

KILLED = {2: "SIGINT", 9: "SIGKILL", 15: "SIGTERM"}
"""Signals that stop a healthy run (Ctrl-C, scancel, walltime): blocks written so far count."""

CRASHES: dict[int, tuple[str, bool]] = {
    # signal: (reason, retry)
    6: (("QWalk aborted (SIGABRT): the input could not be read (unbalanced braces, missing INCLUDE "
         "or input file, no SYSTEM section)"), False),
    8: (("QWalk died of a floating-point exception (SIGFPE): one sample per block "
         "(nconfig*nstep == 1), nblock 0, or a non-numeric value such as 'nblock five'"), False),
    11: ("QWalk crashed (SIGSEGV); POSTPROCESS does this in a g++ -O2 build", False),
    7: ("QWalk crashed (SIGBUS): a full disk or a node problem", True),
    4: ("QWalk died (SIGILL): the binary was built for another CPU", False),
}
EXIT_CODES: dict[int, tuple[str, bool]] = {
    126: ("the QWalk binary is not executable", False),
    127: ("the QWalk binary was not found", False),
}

QWALK_ERRORS: tuple[tuple[str, str], ...] = (
    # part of QWalk's "Error   <message>" -> advice; QWalk input errors are never retried
    ("Not enough configurations", "NCONFIG exceeds the walkers in READCONFIG: give VMC and DMC one NCONFIG"),
    ("Need TIMESTEP", "DMC needs TIMESTEP"),
    ("couldn't find orb file", "the ORBFILE is not in the run directory"),
    ("unknown keyword", "misspelled METHOD or TRIALFUNC type"),
    ("no parameters to optimize", "the trial function has nothing to optimize (add a Jastrow)"),
    ("analytic parameter derivatives", "LINEAR cannot optimize basis parameters: remove OPTIMIZEBASIS"),
    ("couldn't open", "a file the input names is missing (INCLUDE or the input itself)"),
    ("missing system section", "the input has no SYSTEM section"),
    ("brackets", "unbalanced braces in the input"),
    ("STATES section", "STATES does not match NSPIN"),
)


@dataclass
class RunFiles:
    """Everything parsed from one run (input file ``run_id``) in ``directory``."""

    directory: Path
    run_id: str
    specs: list[lp.MethodSpec]
    kinds: list[str]
    prefix: str                       # RUNID: prefix of .log/.config/.wfout/.json
    out: lp.OutputReport
    log: lp.LogData
    streams: lp.StreamReport
    has_log: bool

    def label(self, i: int) -> str:
        spec = self.specs[i] if i < len(self.specs) else None
        return (spec.get("LABEL") if spec else None) or self.kinds[i].lower()

    def final_vmc(self, i: int) -> bool:
        """Whether METHOD ``i`` is a VMC right after an optimizer: of the wave function it hands on."""
        return 0 < i < len(self.kinds) and self.kinds[i] == "VMC" and self.kinds[i - 1] in OPTIMIZERS

    def report(self, i: int) -> lp.MethodReport:
        return self.out.methods[i] if i < len(self.out.methods) else lp.MethodReport(kind=self.kinds[i])

    def path(self, i: int | None, key: str, suffix: str) -> str | None:
        """Relative name of an output (``STORECONFIG``/``WFOUTPUT`` or ``<runid><suffix>``) if present."""
        spec = self.specs[i] if i is not None and i < len(self.specs) else None
        name = (spec.get(key) if spec else None) or self.prefix + suffix
        ok = not Path(name).is_absolute() and ".." not in Path(name).parts
        return name if ok and (self.directory / name).is_file() else None


def load_run(directory: Path, run_id: str, stdout: str = "", stderr: str = "",
             variance: bool = True) -> RunFiles:
    directory = Path(directory)
    specs, runid = lp.parse_input(directory / run_id, directory)
    prefix = runid or run_id
    out = lp.parse_output(directory / f"{run_id}.o")
    log_path = directory / f"{prefix}.log"
    log = lp.parse_log(log_path, variance=variance)
    kinds = [s.name for s in specs] or [m.kind or "?" for m in out.methods] or \
        list(dict.fromkeys(s.kind for s in log.sections if s.kind))
    return RunFiles(directory, run_id, specs, kinds, prefix, out, log,
                    lp.parse_streams(stdout, stderr, run_id), log_path.is_file())


def method_results(run: RunFiles, i: int, warmup: int | None,
                   confidence: float = sampling.CONFIDENCE,
                   ) -> tuple[dict[str, Any], sampling.Published | None]:
    """The numbers of METHOD ``i`` (whatever state it is in), and a VMC/DMC's published estimate."""
    kind = run.kinds[i]
    published = None
    res: dict[str, Any] = {"method": kind.lower(), "energy": None, "error": None, "variance": None,
                           "blocks": None}
    if kind in SAMPLING:
        series = run.log.series.get(run.label(i))
        if series is None and not run.has_log and sum(k in SAMPLING for k in run.kinds) == 1:
            series = lp.parse_json_records(run.directory / f"{run.prefix}.json", run.label(i))
        least = _dmc_least(run.specs[i] if i < len(run.specs) else None, series) if kind == "DMC" else 0
        numbers, published = sample(series, warmup, confidence, least)
        res.update(numbers)
    elif kind in OPTIMIZERS:
        group = [run.report(j) for j in _group(run, i)]
        if kind == "LINEAR":
            steps = [s for r in group for s in r.steps]
            res["iterations"] = [{"energy": finite_or_none(e), "error": finite_or_none(d)} for e, d in steps]
            if steps:
                res.update(energy=finite_or_none(steps[-1][0]), error=finite_or_none(steps[-1][1]))
        else:
            res["iterations"] = [{"dispersion": finite_or_none(d)} for r in group for d in r.dispersions]
            res.update(energy=finite_or_none(group[-1].eref),
                       variance=finite_or_none(group[-1].dispersions[-1]) if group[-1].dispersions else None)
    elif kind == "POSTPROCESS":
        res.update(_postprocess(run.directory / f"{run.prefix}.json"))
    elif kind == "TEST":
        res.update(checks=run.streams.checks_ok + run.streams.checks_failed, failed=run.streams.checks_failed)
    return res, published


def _dmc_least(spec: lp.MethodSpec | None, series: lp.Series | None) -> int:
    """The DMC warm-up floor (:func:`.estimates.dmc_warmup`) from the METHOD's TIMESTEP and NSTEP."""
    def number(key: str) -> float | None:
        try:
            return float(spec.get(key) or "nan") if spec is not None else None
        except ValueError:
            return None
    timestep, nstep = number("TIMESTEP"), number("NSTEP")
    steps = int(nstep) if nstep is not None and math.isfinite(nstep) else None
    timestep = timestep if timestep is not None and math.isfinite(timestep) else None
    return dmc_warmup(timestep, steps, series.nblocks if series is not None else 0)


def _group(run: RunFiles, i: int) -> list[int]:
    """Consecutive METHOD sections of the same kind ending at ``i`` (autogen repeats OPTIMIZE)."""
    start = i
    while start > 0 and run.kinds[start - 1] == run.kinds[i]:
        start -= 1
    return list(range(start, i + 1))


def _postprocess(path: Path) -> dict[str, Any]:
    try:
        energy = json.loads(path.read_text(errors="replace"))["properties"]["energy"]
        value, error, sigma = (float(energy[k][0]) for k in ("value", "error", "sigma"))
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return {}
    return {"energy": finite_or_none(value), "error": finite_or_none(error),
            "variance": finite_or_none(sigma * sigma)}


def decode_signal(code: int | None) -> int | None:
    """Signal number from a Python (-N) or shell (128+N) exit code, else None.

    >>> decode_signal(-9), decode_signal(137), decode_signal(0), decode_signal(1)
    (9, 9, None, None)
    """
    if code is None or code == 0:
        return None
    if code < 0:
        return -code
    return code - 128 if code - 128 in KILLED or code - 128 in CRASHES else None


def _quote(streams: lp.StreamReport) -> str:
    """QWalk's own words: its first ``Error`` line, else an abort line, else nothing."""
    if streams.errors:
        advice = next((a for key, a in QWALK_ERRORS if key.lower() in streams.errors[0].lower()), "")
        return f'; QWalk: "Error   {streams.errors[0]}"' + (f" ({advice})" if advice else "")
    lines = sorted(streams.abort_lines, key=lambda s: s.startswith("terminate"))
    if not lines:
        return ""
    lost = " (its message was lost: run QWalk under stdbuf -oL)" if lines[0].startswith("terminate") else ""
    return f'; QWalk: "{lines[0]}"{lost}'


@dataclass(frozen=True)
class Settings:
    """The Reader options a verdict depends on; the defaults are :class:`.reader.QWalkReader`'s own."""

    method: str | None = None         # whose numbers are reported (its last section); None: the last
    warmup: int | None = None         # blocks dropped from the start; None: gosling's rule
    total_blocks: int | None = None   # VMC/DMC blocks asked for over all attempts; fewer = incomplete
    limits: sampling.Limits = sampling.Limits()


@dataclass
class Outcome:
    """A verdict as plain data: the fields of :class:`autogenv2.codes.base.ReadResult`, without pydantic."""

    verdict: Verdict
    reason: str = ""
    results: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    more: dict[str, Any] = field(default_factory=dict)
    retry: bool = False


class Judged(NamedTuple):
    """The verdict on a run, the numbers of every METHOD section and each VMC/DMC's sampling need."""

    result: Outcome
    methods: list[dict[str, Any]]
    needs: list[sampling.Need | None]


def judge(run: RunFiles, exit_code: int | None, settings: Settings) -> Judged:
    """The verdict on ``run``, the numbers of every METHOD section and what each VMC/DMC still needs."""
    confidence = settings.limits.confidence
    numbers = [method_results(run, i, settings.warmup, confidence) for i in range(len(run.kinds))]
    methods = [res for res, _ in numbers]
    needs = [_need(res, published, settings) if kind in SAMPLING else None
             for kind, (res, published) in zip(run.kinds, numbers, strict=True)]
    return Judged(_verdict(run, exit_code, settings, methods, needs), methods, needs)


def _verdict(run: RunFiles, exit_code: int | None, settings: Settings, methods: list[dict[str, Any]],
             needs: list[sampling.Need | None]) -> Outcome:
    n, done = len(run.kinds), min(run.out.finished, len(run.kinds))
    stopped = done if done < n else None
    sig, quote = decode_signal(exit_code), _quote(run.streams)
    now = methods[stopped] if stopped is not None else {}
    where = f"METHOD {stopped + 1} ({run.kinds[stopped]})" if stopped is not None else "the run"
    if not run.out.exists and not run.log.series:
        if sig in KILLED:
            return _result(Verdict.incomplete, f"killed by {KILLED[sig]} before writing anything",
                           retry=True)
        crash = CRASHES.get(sig or 0, (f"QWalk exited with code {exit_code}", False))[0]
        head = f"{crash}: " if exit_code not in (0, None) else ""
        return _result(Verdict.failed, f"{head}nothing written (no {run.run_id}.o){quote}")
    if sig in KILLED and stopped is not None:
        if run.final_vmc(stopped):  # the optimizer's to continue
            stopped = stopped - 1
        res = methods[stopped]
        need = needs[stopped]
        more = _more_iterations(run, stopped) if need is None else _more_blocks(need)
        return _result(Verdict.incomplete, f"killed by {KILLED[sig]} during {where} after {_progress(res)}",
                       res, more=more, outputs=_outputs(run, stopped), retry=True)
    if exit_code not in (0, None) and sig not in KILLED:
        unknown = (f"QWalk exited with code {exit_code}", True)
        reason, retry = CRASHES.get(sig or 0) or EXIT_CODES.get(exit_code, unknown)
        where = "while reading the input" if sig == 6 and not run.out.methods else f"during {where}"
        return _result(Verdict.failed, f"{reason} {where}{quote}", now, retry=retry)
    if run.streams.errors and stopped is not None:
        return _result(Verdict.failed, f"{where} failed{quote}", now)
    findings = lint.lint_input(run.directory, run.run_id)
    if stopped is not None:
        found = f"; the input check finds: {lint.summary(findings)}" if findings else ""
        if exit_code == 0:
            return _result(Verdict.failed, f"QWalk exited 0 but {where} did not finish (no 'Wall time' "
                                           f"line in {run.run_id}.o; its error text was not captured){found}",
                           now)
        if findings:  # files alone: an input QWalk stops on, not a run still going
            return _result(Verdict.failed, f"{where} did not finish (exit code unknown){found}", now)
        return _result(Verdict.incomplete, f"{where} has not finished after {_progress(methods[stopped])} "
                                           "(exit code unknown)", methods[stopped], retry=True)
    ignored = [f for f in findings if f.ignored]
    if ignored:  # QWalk finished, but not the run the input describes
        reason = (f"{lint.summary(ignored)}: QWalk ignores unknown keywords, so it ran to the end with its "
                  "defaults")
        return _result(Verdict.failed, reason + " instead", methods[-1] if methods else None)
    return _judge_finished(run, methods, needs, settings)


def reported_section(run: RunFiles, method: str | None) -> int | None:
    """The last section of ``method`` (None: the last, where an optimizer's final VMC is the optimizer's)."""
    wanted = [i for i, k in enumerate(run.kinds) if method is None or k.lower() == method]
    if method is None and run.final_vmc(len(run.kinds) - 1):
        return wanted[-2]
    return wanted[-1] if wanted else None


def _judge_finished(run: RunFiles, methods: list[dict[str, Any]], needs: list[sampling.Need | None],
                    settings: Settings) -> Outcome:
    i = reported_section(run, settings.method)
    if i is None:
        return _result(Verdict.failed, f"no {settings.method} METHOD section in {run.run_id}")
    kind, res, outputs = run.kinds[i], methods[i], _outputs(run, i)
    where = f"METHOD {i + 1} ({kind})"
    if kind in SAMPLING:
        if not res["blocks"]:
            return _result(Verdict.failed, f"{where} finished but {run.prefix}.log has no blocks "
                                           f"labelled '{run.label(i)}'", res)
        if res["energy"] is None:
            return _result(Verdict.failed, f"{where}: the energy is not a finite number", res)
        need = needs[i]
        if need is not None and need.verdict is sampling.Verdict.at_limit:
            return _result(Verdict.failed, f"{where}: {need.why}", res, outputs=outputs)
        if need is not None and need.verdict is sampling.Verdict.more:
            return _result(Verdict.incomplete, f"{where} needs more blocks: {need.why}", res,
                           more=_more_blocks(need), outputs=outputs)
        return _result(Verdict.complete, f"{where} finished: {_progress(res)}", res, outputs=outputs)
    if kind in OPTIMIZERS:
        res = {**res, **final_vmc(run, i, methods)}
        if not converged(run, i):
            return _result(Verdict.incomplete, f"{where} finished but has not converged (last change larger "
                                               f"than {CONVERGENCE_SIGMAS:g} error bars)", res,
                           more=_more_iterations(run, i), outputs=outputs)
        return _result(Verdict.complete, f"{where} converged after {len(res['iterations'])} iterations",
                       res, outputs=outputs)
    if kind == "POSTPROCESS" and res["energy"] is None:
        return _result(Verdict.failed, f"{where} finished but {run.prefix}.json has no energy", res)
    return _result(Verdict.complete, f"{where} finished", res, outputs=outputs)


def final_vmc(run: RunFiles, i: int, methods: list[dict[str, Any]]) -> dict[str, Any]:
    """The numbers of the VMC right after the optimizer ending at METHOD ``i`` (the Writer's
    ``final_vmc_nblock``): the energy of the wave function handed on, which the convergence test has not
    seen. {} without one: LINEAR's last ``current energy`` (parameters before its last step) stays."""
    j = i + 1
    if not run.final_vmc(j) or methods[j]["energy"] is None:
        return {}
    vmc = {key: value for key, value in methods[j].items() if key not in ("method", "blocks")}
    return {**vmc, "final_vmc_blocks": methods[j]["blocks"], "energy_of": "a VMC of the final parameters"}


def converged(run: RunFiles, i: int) -> bool:
    """Whether the OPTIMIZE/LINEAR group ending at METHOD ``i`` has converged."""
    group = [run.report(j) for j in _group(run, i)]
    if run.kinds[i] == "LINEAR":
        return linear_converged([s for r in group for s in r.steps], any(r.halted for r in group))
    return optimize_converged(group)


def _progress(res: dict[str, Any]) -> str:
    if res.get("iterations") is not None:
        return f"{len(res['iterations'])} iterations"
    if res.get("blocks") is None:
        return "no blocks"
    text = f"{res['blocks']} complete blocks"
    if res["energy"] is not None and res["error"] is not None:
        text += f", E = {res['energy']:.6f} +/- {res['error']:.6f} Ha (warm-up {res['warmup']})"
    return text


def _need(res: dict[str, Any], published: sampling.Published | None, settings: Settings) -> sampling.Need:
    """What a VMC/DMC section still needs (:func:`sampling.judge`, with the plan's ``total_blocks``)."""
    blocks, warmup = int(res["blocks"] or 0), int(res.get("warmup") or 0)
    return sampling.judge(published, blocks, warmup, settings.limits, settings.total_blocks)


def _more_blocks(need: sampling.Need) -> dict[str, Any]:
    """The Writer's continuation: ``{"nblock": total blocks}`` when more are needed, else nothing."""
    return {"nblock": need.blocks} if need.verdict is sampling.Verdict.more else {}


def _more_iterations(run: RunFiles, i: int) -> dict[str, Any]:
    spec = run.specs[i] if i < len(run.specs) else None
    iterations = (spec.get("ITERATIONS") if spec else None) or ("30" if run.kinds[i] in OPTIMIZERS else None)
    return {"iterations": int(iterations)} if iterations and iterations.isdigit() else {}


def _outputs(run: RunFiles, i: int) -> dict[str, str]:
    if run.kinds[i] in OPTIMIZERS:
        name = run.path(i, "WFOUTPUT", ".wfout")
        return {"wavefunction": name} if name else {}
    if run.kinds[i] in SAMPLING:
        found = {"config": run.path(i, "STORECONFIG", ".config"),
                 "qwalk_trace": run.path(i, "SAVE_TRACE", ".trace")}
        return {key: name for key, name in found.items() if name}
    return {}


def _result(verdict: Verdict, reason: str, results: dict[str, Any] | None = None, *,
            more: dict[str, Any] | None = None, outputs: dict[str, str] | None = None,
            retry: bool = False) -> Outcome:
    return Outcome(verdict=verdict, reason=reason, results=dict(results or {}), more=more or {},
                      outputs=outputs or {}, retry=retry)
