"""``autogenv2 describe CODE [METHOD]``: every option a step accepts, generated from the models.

Each row is one field of the method's Writer or Reader: name, type, default, unit and one line of
help (the field's description, else the docstring written under it in the source, else
:data:`HELP`). Nothing here is maintained by hand except units and the few help lines in
:data:`HELP`; a test compares the listed names with the models.
"""
from __future__ import annotations

import ast
import inspect
import itertools
import json
import textwrap
import types
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

UNITS = {"tstep": "au (1/Ha)", "timestep": "au (1/Ha)", "vmc_tstep": "au (1/Ha)", "target_error": "Ha",
         "eref": "Ha", "mean": "Ha", "sigma": "Ha", "transient": "Ha", "conv_tol": "Ha",
         "seconds_per_block": "s", "nconfig": "walkers", "nblocks": "blocks", "nblock": "blocks",
         "warmup": "blocks", "min_blocks": "blocks", "max_blocks": "blocks", "attempt_limit": "blocks",
         "nstep": "steps", "nsteps_per_block": "steps", "max_iterations": "iterations",
         "lattice": "unit of 'unit'", "tolerance_sigmas": "σ", "target_confidence": "probability"}
HELP = {"seed": "random seed (offset by the blocks done, so continuations never replay it)",
        "python": "interpreter that runs the step (default: the one running autogenv2)",
        "jastrow_kws": "keyword arguments of PyQMC's Jastrow factory",
        "run_id": "QWalk run name: the input is <run_id>.<method>",
        "method": "which run this Writer/Reader serves",
        "charge": "total charge of the molecule or cell", "basis": "PySCF basis name, or {element: name}",
        "ecp": "PySCF ECP name, or {element: name} (None: all-electron)",
        "xc": "exchange-correlation functional (rks/uks)", "unit": "unit of the atom coordinates",
        "max_cycle": "SCF iterations before giving up", "verbose": "PySCF verbosity (0-9)",
        "vmc_nblocks": "VMC blocks per optimization iteration",
        "vmc_nsteps_per_block": "VMC steps per block in optimization",
        "nstep": "steps per block", "nconfig": "walkers", "ndecorr": "VMC decorrelation steps",
        "label": "QWalk label of the method's blocks", "low_io": "QWalk LOW_IO: write less",
        "dynamics": "QWalk move type", "averages": "QWalk average generators", "readconfig": "walker file",
        "tstep": "timestep", "timestep": "timestep (DMC: required)", "conv_tol": "SCF energy convergence",
        "lattice": "three lattice vectors: makes the system a periodic cell",
        "guidetype": "guiding function of a multi-wave-function VMC",
        "nsteps_per_block": "steps per block",
        "tolerance_sigmas": "flat = last energies agree within this many σ",
        "source": "what the chkfile holds: an SCF, or a CASCI/CASSCF ('mcscf')",
        "jastrow": "the Jastrow factor written for QWalk", "mo_type": "QWalk orbital evaluation (MO type)",
        "aip": "QWalk pseudopotential integration points", "mean": "the series' true mean",
        "seconds_per_block": "wall time each block sleeps",
        "transient_blocks": "decay length of the transient",
        "stable_tstep": "largest tstep whose walker weights stay flat",
        "vmc_tstep": "VMC timestep in optimization"}
IGNORED = {"ConvertReader": "accepted and ignored, so one option table serves every QWalk method"}
"""Readers that accept options without using them."""
HIDDEN = {"method"}
"""Fields a plan cannot set: the step's ``method`` key fills them."""
STEP_KEYS = ("runner = 'local'", "resources = {walltime, nodes, tasks, ...}", "max_retries = 3",
             "max_attempts = 50", "max_core_hours (no cap)", "after (the step above)",
             "foreach = {option = [...]}")


def type_text(annotation: Any) -> str:
    """``int``, ``float | None``, ``rhf|uhf``, ``list[int]`` ..."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return type_text(get_args(annotation)[0])
    if origin is Literal:
        return "|".join(str(arg) for arg in get_args(annotation))
    if origin is Union or origin is types.UnionType:
        return " | ".join(type_text(arg) for arg in get_args(annotation))
    if origin is not None:
        inner = ", ".join(type_text(arg) for arg in get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "|".join(str(member.value) for member in annotation)
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def default_text(field: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True)
    if value is None:
        return "None"
    return json.dumps(value, default=str) if not isinstance(value, str) else repr(value)


def attribute_docs(model: type) -> dict[str, str]:
    """The docstring written under each field in the source of the model and its bases (first line)."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not issubclass(cls, BaseModel) or cls.__module__.startswith("pydantic"):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for item, following in itertools.pairwise(body):
            if (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                    and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)):
                docs[item.target.id] = " ".join(following.value.value.split())
    return docs


def options(model: type[BaseModel], source: str) -> list[dict[str, str]]:
    """One row per field of ``model``."""
    docs = attribute_docs(model)
    rows = []
    for name, field in model.model_fields.items():
        if name in HIDDEN:
            continue
        keyword = name in getattr(model, "keywords", ()) or name in getattr(model, "flags", ())
        help_text = (IGNORED.get(model.__name__) or field.description or docs.get(name) or HELP.get(name)
                     or (f"QWalk keyword {name.upper()} (see the QWalk manual)" if keyword else ""))
        rows.append({"option": name, "type": type_text(field.annotation), "default": default_text(field),
                     "unit": UNITS.get(name, ""), "from": source, "help": help_text})
    return rows


def method_rows(code: str, method: str) -> list[dict[str, str]]:
    """Every option a step of ``code``/``method`` accepts (Writer first, then Reader options it lacks)."""
    from .codes import get_method

    writer_cls, reader_cls = get_method(code, method)
    rows = options(writer_cls, "writer")
    seen = {row["option"] for row in rows}
    return rows + [row for row in options(reader_cls, "reader") if row["option"] not in seen]


def describe(code: str, method: str | None = None) -> str:
    """The text of ``autogenv2 describe``: one table per method."""
    from .codes import get_method, methods_of

    table = methods_of(code)
    names = [method] if method is not None else sorted(table)
    groups: dict[tuple[type, type], list[str]] = {}
    for name in names:
        groups.setdefault(get_method(code, name), []).append(name)  # e.g. pyscf: one Writer, five methods
    parts = []
    for (writer_cls, _), same in groups.items():
        summary = " ".join((writer_cls.__doc__ or "").split()).split(". ")[0]
        rows, name = method_rows(code, same[0]), ", ".join(same)
        widths = {key: min(28, max(len(key), *(len(row[key]) for row in rows)))
                  for key in ("option", "type", "default")}
        header = (f"  {'option':<{widths['option']}}  {'type':<{widths['type']}}  "
                  f"{'default':<{widths['default']}}  {'unit':<12}  {'from':<6}  help")
        lines = [f"{code} {name}: {summary}", header]
        for row in rows:
            lines.append(f"  {row['option']:<{widths['option']}}  {row['type']:<{widths['type']}}  "
                         f"{row['default']:<{widths['default']}}  {row['unit']:<12}  {row['from']:<6}  "
                         f"{row['help']}")
        lines.append("  every step also takes: " + "; ".join(STEP_KEYS))
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
