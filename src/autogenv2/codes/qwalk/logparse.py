"""Fast, forgiving parsers for what QWalk leaves in a run directory.

* ``.log``: ``block { }`` records grouped by label into numpy arrays (read in chunks, one regular
  expression per chunk; a block cut in the middle of being written is dropped, never used).
* ``.json``: the per-block records (fallback when the ``.log`` is gone; 6 significant digits only).
* ``.o``: one :class:`MethodReport` per METHOD section that started (kind, finished, LINEAR steps,
  OPTIMIZE dispersions, ...).
* stdout/stderr: QWalk's ``Error`` lines, ``Caught qmc_error``, aborts.
* the input file: :mod:`.inputfile` (its names are re-exported here).

Nothing here raises on damaged files: unreadable parts are skipped and counted.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .inputfile import MethodSpec, parse_input, read_words, tokenize

__all__ = ["LogData", "MethodReport", "MethodSpec", "OutputReport", "Section", "Series", "StreamReport",
           "parse_input", "parse_json_records", "parse_log", "parse_output", "parse_streams", "read_words",
           "tokenize"]

Buffer = bytes | bytearray
CHUNK_BYTES = 2 << 20
"""The ``.log`` is read this many bytes at a time, so memory stays flat whatever its size."""


@dataclass
class Series:
    """All complete blocks of one ``.log`` label, in file order (appended runs merged)."""

    label: str
    kind: str                     # "VMC", "DMC", ... from the ``#VMC run:`` header ("" if none)
    totweight: np.ndarray         # samples per block; gosling's block weights
    energy: np.ndarray            # block average of total_energy
    energyvar: np.ndarray | None  # per-block sample variance (None when not parsed)
    section: np.ndarray           # index into LogData.sections of each block (one per attempt)

    @property
    def nblocks(self) -> int:
        return int(self.energy.size)


@dataclass
class Section:
    """One ``#XXX run:`` header appended by one method run."""

    kind: str
    header: str
    label: str = ""


@dataclass
class LogData:
    series: dict[str, Series] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    dropped: int = 0              # incomplete or unreadable blocks that were skipped


_HEADER = re.compile(rb"#([A-Za-z_]+) run:([^\n]*)")   # '#' is rare in a log: a fast scan
_INIT_LABEL = re.compile(rb"init\s*\{\s*label\s+([^\s{}]+)")
_NUM = rb"([^ \t\n\r\x0b\x0c{}]+)"
r"""A token: ``[^\s{}]+`` spelt out (for bytes ``\s`` is these six), which ``re`` tests by a bitmap
instead of a category: the strict pattern runs about 15 % faster."""


def _block_pattern(strict: bool, variance: bool) -> re.Pattern[bytes]:
    """QWalk's exact layout (fast) or any whitespace (tolerant); groups label, totweight, E[, var].

    The strict pattern matches every ``block {`` whose groups are empty where the layout differs, so one
    pass both counts the blocks and reads the well-formed ones. (Unlike ``bytes.count`` it does not count
    a ``block {`` written inside another block's lines: only ``dropped`` of a garbled log can differ.)
    """
    if strict:  # (?:...|) matches as (?:...)? does, 7 % faster (a branch, not a repeat)
        text = (rb"block \{(?: \n   label " + _NUM + rb"\n   totweight " + _NUM + rb"\n   nautocorr [^\n]*\n"
                rb"   total_energy \{ " + _NUM)
        if variance:
            text += rb"[^\n]*\n   total_energyvar \{ " + _NUM
        return re.compile(text + rb"|)")
    text = (rb"block\s*\{\s*label\s+" + _NUM + rb"\s+totweight\s+" + _NUM + rb"\s+nautocorr\s+[^\s{}]+\s+"
            rb"total_energy\s*\{\s*" + _NUM)
    if variance:
        text += rb"[^{}]*\}\s*total_energyvar\s*\{\s*" + _NUM
    return re.compile(text)


_PATTERNS = {(s, v): _block_pattern(s, v) for s in (True, False) for v in (True, False)}


def _drop_cut_block(buf: Buffer, start: int, end: int) -> int:
    """End of ``buf[start:end]`` without its last block if that block's braces do not close.

    QWalk writes a block at once and appends, so only the last block before a new ``#XXX run:``
    header or the end of the file can have been cut by a crash.
    """
    last = buf.rfind(b"block {", start, end)
    if last >= 0 and buf.count(b"{", last, end) != buf.count(b"}", last, end):
        return last
    return end


def _floats(tokens: Sequence[bytes]) -> np.ndarray:
    """Parse number tokens; unreadable ones become NaN (callers drop them via ``_valid``)."""
    try:
        return np.fromiter(map(float, tokens), float, len(tokens))
    except ValueError:
        return np.array([_float_or_nan(t) for t in tokens], dtype=float)


def _repeated_floats(tokens: Sequence[bytes]) -> np.ndarray:
    """Like ``_floats`` for columns with few distinct values (totweight): parse each once."""
    lookup = {t: _float_or_nan(t) for t in set(tokens)}
    return np.fromiter(map(lookup.__getitem__, tokens), float, len(tokens))


def _float_or_nan(token: bytes) -> float:
    try:
        return float(token)
    except ValueError:
        return float("nan")


def _valid(tokens: Sequence[bytes], values: np.ndarray) -> np.ndarray:
    """True where a value is a number, or QWalk's own spelling of nan/inf."""
    ok: np.ndarray = ~np.isnan(values)
    if not ok.all():
        ok |= np.array([t.lower().lstrip(b"+-") == b"nan" for t in tokens])
    return ok


class _Collector:
    """Accumulates per-label arrays across chunks and segments."""

    def __init__(self, variance: bool) -> None:
        self.variance = variance
        self.parts: dict[bytes, list[tuple[np.ndarray, ...]]] = {}
        self.data = LogData()

    def section(self, kind: bytes, header: bytes, buf: Buffer, start: int, stop: int) -> None:
        found = _INIT_LABEL.search(buf, start, min(start + 4096, stop))
        label = found.group(1).decode(errors="replace") if found else ""
        self.data.sections.append(Section(kind.decode(errors="replace"),
                                          header.decode(errors="replace").strip(), label))

    def segment(self, buf: Buffer, start: int, end: int) -> None:
        """Blocks of ``buf[start:end]`` (no slicing: a chunk is megabytes)."""
        kept = _drop_cut_block(buf, start, end)
        dropped = int(kept < end)
        found = _PATTERNS[True, self.variance].findall(buf, start, kept)
        expected = len(found)
        if found and (b"",) * len(found[0]) in found:  # some blocks differ from QWalk's layout
            found = [row for row in found if row[0]]
        rows = found
        if len(rows) < expected:
            loose = _PATTERNS[False, self.variance].findall(buf, start, kept)
            rows = loose if len(loose) > len(rows) else rows
        self.data.dropped += dropped + expected - len(rows)
        if rows:
            self._add(rows)

    def _add(self, rows: list[tuple[bytes, ...]]) -> None:
        if not self.data.sections:
            self.data.sections.append(Section("", ""))
        cols = [[row[i] for row in rows] for i in range(len(rows[0]))]  # 20x faster than zip(*rows)
        values = [_repeated_floats(cols[1])] + [_floats(c) for c in cols[2:]]
        ok = np.ones(len(rows), bool)
        for col, val in zip(cols[1:], values, strict=True):
            ok &= _valid(col, val)
        self.data.dropped += int((~ok).sum())
        section = np.full(len(rows), len(self.data.sections) - 1, dtype=np.int32)
        labels = cols[0]
        distinct = set(labels)
        for label in distinct:
            mask = ok if len(distinct) == 1 else ok & (np.array(labels) == label)
            self.parts.setdefault(label, []).append(tuple(v[mask] for v in values) + (section[mask],))

    def result(self) -> LogData:
        for raw, parts in self.parts.items():
            label = raw.decode(errors="replace")
            cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
            first = int(cols[-1][0]) if cols[-1].size else 0
            kind = self.data.sections[first].kind if self.data.sections else ""
            var = cols[2] if self.variance else None
            self.data.series[label] = Series(label, kind, cols[0], cols[1], var, cols[-1])
        return self.data


def _headers(buf: Buffer, end: int) -> Iterator[re.Match[bytes]]:
    """The ``#XXX run:`` lines of ``buf[:end]`` that start a line (``find`` is faster than a regex scan)."""
    pos = buf.find(b"#", 0, end)
    while pos >= 0:
        head = _HEADER.match(buf, pos, end)
        if head and (pos == 0 or buf[pos - 1] == 10):
            yield head
        pos = buf.find(b"#", head.end() if head else pos + 1, end)


def _feed(buf: Buffer, end: int, stop: int, out: _Collector) -> None:
    """Split ``buf[:end]`` at ``#XXX run:`` lines and hand each piece to ``out`` (the data ends at stop)."""
    start = 0
    for head in _headers(buf, end):
        out.segment(buf, start, head.start())
        start = head.start()
        out.section(head.group(1), head.group(2), buf, start, stop)
    out.segment(buf, start, end)


def _cut(buf: Buffer, end: int) -> int:
    """Where to stop in ``buf[:end]`` so that no block or header is split across chunks."""
    block = buf.rfind(b"\nblock {", 0, end)
    cut = max(block, buf.rfind(b"\n#", max(block, end - (1 << 16), 0), end))
    if cut <= 0:
        cut = buf.rfind(b"\n", 0, end)
    return cut + 1 if cut > 0 else end


def parse_log(path: Path, variance: bool = True, chunk_bytes: int = CHUNK_BYTES) -> LogData:
    """Complete blocks of a QWalk ``.log``, per label. A missing file gives an empty result.

    One buffer is reused for every chunk (the unfinished tail moved to its front): fresh 2 MB
    buffers cost page faults and copies that took as long as the parsing.
    """
    out = _Collector(variance)
    try:
        handle = open(path, "rb")
    except OSError:
        return out.data
    with handle:
        buf, carry = bytearray(chunk_bytes), 0
        while True:
            if len(buf) < carry + chunk_bytes:
                buf.extend(bytes(carry + chunk_bytes - len(buf)))
            with memoryview(buf) as view:
                got = handle.readinto(view[carry:carry + chunk_bytes])
            end = carry + got
            if not got:
                _feed(buf, end, end, out)
                break
            cut = _cut(buf, end) if end < 4 * chunk_bytes else end
            _feed(buf, cut, end, out)
            buf[:end - cut] = buf[cut:end]
            carry = end - cut
    return out.result()


_JSON_RECORD = re.compile(rb'"total_energy"\s*:\s*\{\s*"value"\s*:\s*\[\s*([^\s,\]]+)[^\]]*\]\s*,'
                          rb'\s*"error"\s*:\s*\[[^\]]*\]\s*,\s*"sigma"\s*:\s*\[\s*([^\s,\]]+)')


def parse_json_records(path: Path, label: str = "") -> Series | None:
    """Block energies from a VMC/DMC ``.json`` (``<RS>``-separated, not strict JSON); None if absent."""
    try:
        text = Path(path).read_bytes()
    except OSError:
        return None
    records = [r for r in text.split(b"<RS>") if r.strip()]
    if records and not records[-1].rstrip().endswith(b"}"):
        records.pop()  # cut while being written
    rows = [m.groups() for r in records for m in [_JSON_RECORD.search(r)] if m]
    if not rows:
        return None
    energy, sigma = (_floats(c) for c in zip(*rows, strict=True))
    ok = ~(np.isnan(energy) | np.isnan(sigma))
    n = int(ok.sum())
    return Series(label, "", np.ones(n), energy[ok], sigma[ok] ** 2, np.zeros(n, np.int32))


# ----------------------------------------------------------------------------------- .o file

_KIND_MARKERS = (("Linear wave function optimization:", "LINEAR"),
                 ("Wave function optimization:", "OPTIMIZE"), ("Variational Monte Carlo:", "VMC"),
                 ("Diffusion Monte Carlo:", "DMC"), ("#Postprocess_method", "POSTPROCESS"),
                 ("#Testing#", "TEST"))
_WALL = re.compile(r"^Wall time for this method:[^\n]*", re.M)
_STEP = re.compile(r"step (\d+): current energy (\S+) \+/- (\S+)")
_DISPERSION = re.compile(r"iteration # (\d+)\s+dispersion= (\S+)")
_EREF = re.compile(r"Running with reference energy (\S+)")
_NCONFIG = re.compile(r"Number of configurations : (\d+)")
_HEAD_SEARCH = 1 << 20


@dataclass
class MethodReport:
    """What the ``.o`` says about one METHOD section that started."""

    kind: str = ""
    finished: bool = False
    steps: list[tuple[float, float]] = field(default_factory=list)    # LINEAR (energy, error)
    dispersions: list[float] = field(default_factory=list)          # OPTIMIZE objective per iteration
    eref: float | None = None
    nconfig: int | None = None
    halted: bool = False


@dataclass
class OutputReport:
    exists: bool = False
    methods: list[MethodReport] = field(default_factory=list)

    @property
    def finished(self) -> int:
        return sum(m.finished for m in self.methods)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _method_report(text: str, finished: bool) -> MethodReport:
    head = text[:_HEAD_SEARCH]
    kinds = [(head.find(marker), kind) for marker, kind in _KIND_MARKERS if marker in head]
    report = MethodReport(kind=min(kinds)[1] if kinds else "", finished=finished)
    if report.kind == "LINEAR":
        report.steps = [(_number(m.group(2)), _number(m.group(3))) for m in _STEP.finditer(text)]
        report.halted = "Halting" in text
    elif report.kind == "OPTIMIZE":
        report.dispersions = [_number(m.group(2)) for m in _DISPERSION.finditer(text)]
        eref = _EREF.search(text)
        report.eref = _number(eref.group(1)) if eref else None
        nconfig = _NCONFIG.search(head)
        report.nconfig = int(nconfig.group(1)) if nconfig else None
    return report


def parse_output(path: Path) -> OutputReport:
    """Per-method reports from a ``.o``; the last one is unfinished if it has no ``Wall time`` line."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return OutputReport()
    report = OutputReport(exists=True)
    start = 0
    for wall in _WALL.finditer(text):
        report.methods.append(_method_report(text[start:wall.start()], True))
        start = wall.end()
    rest = text[start:]
    if any(marker in rest[:_HEAD_SEARCH] for marker, _ in _KIND_MARKERS) or "Entering VMC" in rest:
        report.methods.append(_method_report(rest, False))
    return report


# ------------------------------------------------------------------------------ stdout / stderr

_ERROR_LINE = re.compile(r"^Error\s+(.*?)\s*$", re.M)
_ABORT_LINES = re.compile(r"^(you have unbalance[^\n]*|terminate called[^\n]*)", re.M)


@dataclass
class StreamReport:
    errors: list[str] = field(default_factory=list)     # QWalk's ``Error   <msg>`` messages
    caught: bool = False                                 # ``Caught qmc_error`` (exit 0 follows)
    abort_lines: list[str] = field(default_factory=list)
    checks_ok: int = 0                                   # TEST method: derivative checks
    checks_failed: int = 0


def parse_streams(stdout: str, stderr: str, run_id: str | None = None) -> StreamReport:
    """Error text of the *last* attempt: stdout is cut at its last ``output to <run_id>.o`` line."""
    marker = f"output to {run_id}.o" if run_id else "output to "
    cut = stdout.rfind(marker)
    text = stdout[cut:] if cut >= 0 else stdout
    both = text + "\n" + stderr
    return StreamReport(
        errors=[m.group(1) for m in _ERROR_LINE.finditer(both)],
        caught="Caught qmc_error" in both,
        abort_lines=[m.group(1).strip() for m in _ABORT_LINES.finditer(both)],
        checks_ok=len(re.findall(r"\sOK\s*$", text, re.M)),
        checks_failed=len(re.findall(r"\sFAILED\s*$", text, re.M)))
