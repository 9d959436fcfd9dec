"""The ``convert`` method: a PySCF chkfile becomes QWalk input files, in its own run directory.

The run is ``python convert.py``: a self-contained script that reads ``convert.json`` and calls
:func:`autogenv2.codes.qwalk.converter.convert`, then records the artifact table in
``converted.json`` (written last, atomically). The Reader trusts that table only when every
file it names exists. With ``kpoint = "all"`` it converts every k-point for twist averaging
(:func:`autogenv2.codes.qwalk.twists.convert_all`).
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from ...naming import check_name
from ...states import Verdict
from ..base import Reader, ReadResult, Writer
from ..failures import last_error_line
from .twists import is_twist_artifact

MANIFEST = "converted.json"
ARTIFACTS = ("qwalk_system", "qwalk_wavefunction", "qwalk_slater", "qwalk_orb", "qwalk_basis",
             "qwalk_jastrow")

SCRIPT = '''\
"""PySCF -> QWalk conversion written by autogenv2: the options are in convert.json."""
import json
import os

from autogenv2.codes.qwalk.converter import convert
from autogenv2.codes.qwalk.twists import convert_all

P = json.load(open("convert.json"))
if P["kpoint"] == "all":  # every k-point: k-point 0 under the plain names, k-point i as <basename>_k<i>.*
    P.pop("kpoint")
    table = convert_all(P.pop("chkfile"), ".", P.pop("basename"), **P)
else:
    table = convert(P.pop("chkfile"), ".", P.pop("basename"), **P)
with open("converted.json.tmp", "w") as handle:
    json.dump(table, handle, indent=1)
os.replace("converted.json.tmp", "converted.json")
print("converted:", ", ".join(f"{k}={v}" for k, v in table.items()), flush=True)
'''


class ConvertWriter(Writer):
    """Convert the chkfile of an SCF (or CASCI/CASSCF with ``source='mcscf'``) for QWalk."""

    consumes = ("chkfile",)

    run_id: str = "qw"
    """Base name of the files written: ``<run_id>.sys``, ``.slater``, ``.orb``, ``.basis``, ``.jast2``."""
    source: Literal["scf", "mcscf"] = "scf"
    kpoint: int | Literal["all"] = 0
    """Index into the chkfile's k-points (k-point calculations); ``"all"``: every k-point, for the
    ``twist`` option of VMC and DMC (see :mod:`.twists`)."""
    jastrow: Literal["none", "twobody", "threebody"] = "twobody"
    optimizebasis: bool = False
    """Let OPTIMIZE vary the Jastrow basis; LINEAR refuses such a Jastrow."""
    supercell: tuple[int, int, int] | None = Field(None, description="copies of the cell along a1, a2, a3")
    """Simulate ``n1 x n2 x n3`` primitive cells (:mod:`.supercell`): the KRHF k-points are folded into
    the supercell's twists; ``kpoint`` then counts supercell twists (``"all"``: every one)."""
    optimize_det: bool = False
    """OPTIMIZE_DET in the SLATER: LINEAR and OPTIMIZE also vary the determinant weights (needs
    several determinants, i.e. ``source = "mcscf"``)."""
    ci_threshold: float = Field(1e-4, ge=0, description="drop determinants with smaller |CI coefficient|")
    mo_type: Literal["CUTOFF_MO", "BLAS_MO", "BASFUNC_MO", "EINSPLINE_MO"] | None = None
    aip: Literal[4, 6, 12, 18, 26, 32] | None = None
    """PSEUDO integration points; None: 12 for more than two channels, else 6, as QWalk's own
    converters choose (``src/converter/Pseudo_writer.cpp``; :func:`.system.default_aip`)."""
    python: str | None = None
    """Interpreter for the run (default: the one running autogenv2)."""

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, value: str) -> str:
        return check_name(value, "run_id")

    @field_validator("kpoint", mode="before")
    @classmethod
    def _kpoint(cls, value: object, info: ValidationInfo) -> object:
        if value == "all" and info.data.get("source", "scf") != "scf":
            raise ValueError('"all" converts the k-points of an SCF: it needs source = "scf"')
        if value != "all" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ValueError(f'{value!r} is neither a k-point index (0, 1, ...) nor "all" (every k-point)')
        return value

    def write(self, directory: Path, inputs: Mapping[str, Path]) -> list[str]:
        params = self.model_dump(exclude={"python", "run_id"})
        params["basename"] = self.run_id
        params["chkfile"] = os.path.relpath(inputs["chkfile"], directory)
        (Path(directory) / "convert.json").write_text(json.dumps(params, indent=1))
        (Path(directory) / "convert.py").write_text(SCRIPT)
        return ["convert.json", "convert.py"]

    def command(self) -> list[str]:
        return [self.python or sys.executable, "convert.py"]


class ConvertReader(Reader):
    """Complete when ``converted.json`` exists and every file it names is there.

    Accepts (and ignores) the options of :class:`QWalkReader`, so one plan option dict
    serves every QWalk method.
    """

    run_id: str | None = None
    method: Literal["vmc", "dmc", "optimize", "linear", "postprocess", "test"] | None = None
    target_error: float | None = Field(None, gt=0)
    min_blocks: int = Field(10, ge=2)
    max_blocks: int = Field(20000, ge=1)
    target_confidence: float = Field(0.95, ge=0.5, lt=1)
    warmup: int | None = Field(None, ge=0)

    def read(self, directory: Path, exit_code: int | None = None) -> ReadResult:
        directory = Path(directory)
        if exit_code not in (None, 0):
            line = last_error_line(directory / "stdout.txt")
            return ReadResult(verdict=Verdict.failed, retry=exit_code < 0,
                              reason=f"conversion failed: {line or f'exit code {exit_code}'}")
        manifest = directory / MANIFEST
        if not manifest.is_file():
            line = last_error_line(directory / "stdout.txt")
            reason = f"conversion wrote no {MANIFEST}" + (f": {line}" if line else "")
            return ReadResult(verdict=Verdict.failed, reason=reason)
        table = json.loads(manifest.read_text())
        outputs = {k: str(v) for k, v in table.items() if k in ARTIFACTS or is_twist_artifact(k)}
        missing = [name for name in outputs.values() if not (directory / name).is_file()]
        if missing or "qwalk_system" not in outputs or "qwalk_wavefunction" not in outputs:
            return ReadResult(verdict=Verdict.failed,
                              reason=f"conversion output incomplete: missing {missing or 'entries'}")
        results = {"reference_energy": table.get("energy"), "ndet": table.get("ndet")}
        if "ntwists" in table:
            results.update(ntwists=table["ntwists"], twist_weights=table["twist_weights"])
        return ReadResult(verdict=Verdict.complete, reason="converted", results=results, outputs=outputs)
