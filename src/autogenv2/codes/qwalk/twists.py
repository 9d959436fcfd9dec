"""Twist averaging with QWalk: one conversion of every k-point, one Jastrow for all twists.

The ``convert`` method with ``kpoint = "all"`` writes the k-point-0 files under the plain names
(``qw.sys``, ``qw.slater``, ...: an optimization after it works unchanged) and every k-point ``i``
as ``qw_k<i>.sys``, ``qw_k<i>.slater``, ... (k-point 0 reuses the plain files). Its outputs add
``qwalk_system_k<i>``, ``qwalk_slater_k<i>``, ``qwalk_orb_k<i>``, ``qwalk_basis_k<i>``,
``qwalk_wavefunction_k<i>`` (and ``qwalk_jastrow_k<i>``) and ``qwalk_twists``: ``twists.json`` with
each twist's k-vector (1/bohr) and weight (uniform over the chkfile's k-points, which is right for
a full Monkhorst-Pack mesh; :func:`autogenv2.analysis.twist_weights_from_kpts`).

A VMC or DMC step with ``twist = i`` uses the files of k-point ``i`` in place of the plain ones.
When an optimizer's ``.wfout`` comes in, only its Jastrow (``WF2``) is kept: the trial function is
the twist's Slater determinant times that Jastrow. The step records ``twist.json`` (twist, k-vector,
weight, number of twists) in its run directory, and the Reader reports those numbers.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...analysis import twist_weights_from_kpts
from ...errors import OptionError
from . import syntax

if TYPE_CHECKING:
    from .writer import SamplingWriter

TWISTS_FILE = "twists.json"
"""The conversion's table of twists (artifact ``qwalk_twists``)."""
RECORD = "twist.json"
"""What a twisted VMC/DMC run directory records for its Reader."""
PER_TWIST = ("qwalk_system", "qwalk_wavefunction", "qwalk_slater", "qwalk_orb", "qwalk_basis",
             "qwalk_jastrow")
TWIST_ARTIFACT = re.compile(r"(qwalk_[a-z]+)_k(\d+)")


def chkfile_kpoints(chkfile: Path) -> np.ndarray:
    """The absolute k-points (1/bohr, shape (nk, 3)) of a k-point SCF chkfile."""
    from pyscf import lib

    from .converter import ConversionError

    kpts = lib.chkfile.load(str(chkfile), "scf/kpts")
    if kpts is None:
        kpt = lib.chkfile.load(str(chkfile), "scf/kpt")
        if kpt is None:
            raise ConversionError(f"{chkfile}: kpoint='all' needs a periodic SCF (no k-points in 'scf')")
        kpts = kpt
    return np.asarray(kpts, dtype=float).reshape(-1, 3)


def convert_all(chkfile: Path, directory: Path, basename: str = "qw", **options: Any) -> dict[str, Any]:
    """:func:`convert` every k-point of ``chkfile``; the table of k-point 0 plus the per-twist entries."""
    from .converter import ConversionError, convert

    if options.get("source", "scf") != "scf":
        raise ConversionError("kpoint='all' converts the k-points of an SCF; use source='scf'")
    directory = Path(directory)
    kpts = chkfile_kpoints(chkfile)
    weights = twist_weights_from_kpts(kpts)
    if options.get("supercell") is not None:  # one twist per group of k-points folding onto it
        from pyscf.pbc.lib.chkfile import load_cell

        from .supercell import twist_table
        folded = twist_table(load_cell(str(chkfile)), kpts, tuple(options["supercell"]))
        kpts, weights = np.array([k for k, _ in folded]), np.array([w for _, w in folded])
    table = convert(chkfile, directory, basename, kpoint=0, **options)
    entries: list[dict[str, Any]] = []
    for i, k in enumerate(kpts):
        files = table if i == 0 else convert(chkfile, directory, f"{basename}_k{i}", kpoint=i, **options)
        entries.append({"twist": i, "kpoint": [float(x) for x in k], "weight": float(weights[i]),
                        "files": {name: files[name] for name in PER_TWIST if name in files}})
    tmp = directory / f"{TWISTS_FILE}.tmp"
    ncells = int(np.prod(options["supercell"])) if options.get("supercell") is not None else 1
    tmp.write_text(json.dumps({"ntwists": len(entries), "ncells": ncells, "twists": entries}, indent=1))
    os.replace(tmp, directory / TWISTS_FILE)
    table.update({f"{name}_k{e['twist']}": file for e in entries for name, file in e["files"].items()})
    return {**table, "qwalk_twists": TWISTS_FILE, "ntwists": len(entries),
            "twist_weights": [e["weight"] for e in entries]}


def is_twist_artifact(name: str) -> bool:
    """True for the conversion outputs that only twisted runs use."""
    match = TWIST_ARTIFACT.fullmatch(name)
    return name == "qwalk_twists" or (match is not None and match.group(1) in PER_TWIST)


def input_names(twist: int | None) -> tuple[str, ...]:
    """The extra inputs a run at ``twist`` takes from the conversion (none without a twist)."""
    return () if twist is None else ("qwalk_twists", *(f"{name}_k{twist}" for name in PER_TWIST))


def copy_inputs(writer: SamplingWriter, directory: Path, inputs: Mapping[str, Path],
                copy: Callable[[Path, Mapping[str, Path]], dict[str, str]]) -> dict[str, str]:
    """``SamplingWriter.copy_inputs``: ``copy`` the twist's files under the plain names, record the twist.

    An optimizer's ``.wfout`` (input ``wavefunction``) gives only its Jastrow: the trial function
    becomes the twist's determinant times that Jastrow (``<run>.k<twist>.wf``).
    """
    if writer.twist is None:
        write_record(directory, None)
        return copy(directory, inputs)
    chosen, record = twist_inputs(writer.method, writer.twist, inputs)
    copied = copy(directory, chosen)
    if "wavefunction" in copied:
        copied["wavefunction"] = jastrow_trialfunc(writer.method, directory, copied["wavefunction"],
                                                   copied.get("qwalk_slater"),
                                                   f"{writer.qwalk_run}.k{writer.twist}.wf")
    write_record(directory, record)
    return copied


def twist_inputs(method: str, twist: int,
                 inputs: Mapping[str, Path]) -> tuple[dict[str, Path], dict[str, Any]]:
    """``inputs`` with the files of k-point ``twist`` in place of the plain ones, and the twist record."""
    where = f"{method}: option 'twist'"
    if "qwalk_twists" not in inputs:
        raise OptionError(f"{where}: twist {twist} needs the files of every k-point: "
                          "give the convert step kpoint = \"all\"")
    table = json.loads(Path(inputs["qwalk_twists"]).read_text())
    ntwists = int(table["ntwists"])
    if twist >= ntwists:
        raise OptionError(f"{where}: twist {twist}: the conversion has {ntwists} k-point"
                          f"{'s' if ntwists != 1 else ''} (twists 0 to {ntwists - 1})")
    entry = table["twists"][twist]
    chosen = {k: Path(v) for k, v in inputs.items() if not is_twist_artifact(k) and k not in PER_TWIST}
    for name in entry["files"]:
        key = f"{name}_k{twist}"
        if key not in inputs:
            raise OptionError(f"{where}: twist {twist}: input '{key}' is missing "
                              "(is the convert step upstream?)")
        chosen[name] = Path(inputs[key])
    record = {"twist": twist, "ntwists": ntwists, "weight": float(entry["weight"]),
              "kpoint": [float(x) for x in entry["kpoint"]]}
    if int(table.get("ncells", 1)) > 1:  # a supercell of that many primitive cells
        record["ncells"] = int(table["ncells"])
    return chosen, record


def jastrow_trialfunc(method: str, directory: Path, wfout: str, slater: str | None, target: str) -> str:
    """Write ``target``: SLATER-JASTROW of the twist's ``slater`` and the Jastrow (WF2) of ``wfout``."""
    tree = syntax.load(directory / wfout, expand=False)
    wf2 = tree.section("WF2")
    if (tree.type_word or "").upper() != "SLATER-JASTROW" or wf2 is None:
        raise OptionError(f"{method}: option 'twist': the optimized wave function {wfout} is not "
                          "SLATER-JASTROW with a WF2 Jastrow: no Jastrow to reuse at another twist")
    if slater is None:
        raise OptionError(f"{method}: option 'twist': no qwalk_slater input for the twist's determinant")
    text = f"SLATER-JASTROW\nWF1 {{ include {slater} }}\n" + syntax.dumps(syntax.Section("", [wf2]))
    (directory / target).write_text(text)
    return target


def write_record(directory: Path, record: dict[str, Any] | None) -> None:
    """Write (or, for an untwisted run, remove) ``twist.json``."""
    path = Path(directory) / RECORD
    if record is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(json.dumps(record, indent=1))


def read_record(directory: Path) -> dict[str, Any]:
    """Reader: ``twist``, ``kpoint`` (1/bohr), ``twist_weight``, ``ntwists`` of a twisted run, and for a
    supercell its number of primitive ``cells``; else {}."""
    path = Path(directory) / RECORD
    if not path.is_file():
        return {}
    info = json.loads(path.read_text())
    found = {"twist": int(info["twist"]), "kpoint": [float(k) for k in info["kpoint"]],
             "twist_weight": float(info["weight"]), "ntwists": int(info["ntwists"])}
    if int(info.get("ncells", 1)) > 1:
        found["cells"] = int(info["ncells"])
    return found


def per_cell(results: dict[str, Any]) -> dict[str, Any]:
    """A supercell run's energy and error per primitive cell (comparable with a KRHF ``e_tot``)."""
    cells, energy, error = results.get("cells"), results.get("energy"), results.get("error")
    if not isinstance(cells, int) or cells <= 1 or not isinstance(energy, float):
        return {}
    return {"energy_per_cell": energy / cells,
            "error_per_cell": error / cells if isinstance(error, float) else None}
