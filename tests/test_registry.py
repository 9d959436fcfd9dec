"""Backends and codes are self-contained: each is named only in its own module/package and its one
registry line (runners.BACKENDS, codes.CODES), and a new one needs nothing else (docs/architecture.md)."""
from __future__ import annotations

import ast
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest

import autogenv2
from autogenv2.codes import CODES, methods_of
from autogenv2.codes.toy.writer import ToyWriter
from autogenv2.errors import OptionError, PlanError
from autogenv2.plan import plan_from_dict
from autogenv2.profiles import load_profiles
from autogenv2.progress import progress_line
from autogenv2.runners import BACKENDS, runner_class
from autogenv2.runners.base import Resources, RunRequest, RunStatus
from autogenv2.states import State
from autogenv2.status import ElementStatus

SRC = Path(autogenv2.__file__).parent

KNOWN = {
    ("profiles.py", "local"): "DEFAULT_PROFILE: the built-in profile's name (its kind is from the registry)",
    ("index.py", "qwalk"): "LOCAL_ENERGY_VARIANCE_CODES: results carrying only `variance` (QWalk's is the "
                           "local energy's); a new code's is a block variance unless its Reader names it",
    ("cli.py", "qwalk"): "`autogenv2 inspect` is a QWalk-only command (imports codes.qwalk.inspect)",
    ("quick.py", "qwalk"): "`autogenv2 inspect` answered without typer (the same QWalk-only command)",
}
"""Where a backend or code is still named outside its own module, with why; nothing else may be."""


def _own(path: str, name: str) -> bool:
    """``path`` (relative to the package) is ``name``'s own module/package or its registry."""
    if name in BACKENDS:
        return path in (f"runners/{name}.py", "runners/__init__.py")
    return path.startswith(f"codes/{name}/") or path == "codes/__init__.py"


def _names(tree: ast.AST, modules: dict[str, str]) -> set[str]:
    """Backend/code names a module mentions: string constants, imports of their modules, class names."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in modules:
            found.add(modules[node.value])
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in _own_imports(node):
                found.update(name for part in target.split(".") for name in [modules.get(part)] if name)
        elif isinstance(node, ast.Name) and node.id in modules and node.id[:1].isupper():  # a class name
            found.add(modules[node.id])
    return found


def _own_imports(node: ast.Import | ast.ImportFrom) -> list[str]:
    """Dotted names of autogenv2 modules imported (``from pyscf import gto`` is the library, not the code)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("autogenv2.")]
    if node.level == 0 and not (node.module or "").startswith("autogenv2."):
        return []
    return [f"{node.module or ''}.{a.name}" for a in node.names]


def _mentions() -> dict[tuple[str, str], int]:
    modules = {kind: kind for kind in BACKENDS} | {cls: kind for kind, cls in BACKENDS.items()}
    modules |= {code: code for code in CODES}
    seen: dict[tuple[str, str], int] = {}
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        for name in _names(ast.parse(path.read_text(encoding="utf-8")), modules):
            if not _own(relative, name):
                seen[(relative, name)] = seen.get((relative, name), 0) + 1
    return seen


def test_no_backend_or_code_is_named_outside_its_module_and_registry() -> None:
    mentions = set(_mentions())
    strays = sorted(mentions - set(KNOWN))
    assert not strays, ("named outside its own module and registry line (move it into the backend/code, or "
                        f"add a reason to KNOWN): {strays}")
    stale = sorted(set(KNOWN) - mentions)
    assert not stale, f"KNOWN entries that no longer occur (remove them from KNOWN): {stale}"


def test_the_scan_finds_a_stray_name() -> None:
    """The scan is not blind: a module that compares a kind or imports a code is caught."""
    modules = {"slurm": "slurm", "SlurmRunner": "slurm", "qwalk": "qwalk"}
    assert _names(ast.parse('if kind == "slurm": pass'), modules) == {"slurm"}
    assert _names(ast.parse("from .codes.qwalk.blocks import read_blocks"), modules) == {"qwalk"}
    assert _names(ast.parse("x = SlurmRunner()"), modules) == {"slurm"}
    assert _names(ast.parse("from ..qwalk.reader import X\nimport autogenv2.runners.slurm"), modules) == {
        "qwalk", "slurm"}
    assert _names(ast.parse("from qwalk import gto\nslurm = 1"), modules) == set()  # a library, a variable
    assert _names(ast.parse('"""slurm in a docstring is prose"""'), modules) == set()


@pytest.mark.parametrize("kind", list(BACKENDS))
def test_each_backend_module_holds_the_whole_contract(kind: str) -> None:
    cls: Any = runner_class(kind)
    assert cls.__module__ == f"autogenv2.runners.{kind}" and cls.name == kind
    assert isinstance(cls.runs_here, bool) and cls.max_bundle >= 1 and isinstance(cls.settings, dict)
    for member in ("start", "start_bundle", "poll", "cancel", "check_resources"):
        assert callable(getattr(cls, member)), f"{kind}: no {member}"


class EchoRunner:
    """A backend defined outside the package, registered by one line: profiles need nothing else."""

    name = "echo"
    runs_here = False
    max_bundle = 4
    settings: ClassVar[dict[str, tuple[str, ...]]] = {"dialect": ("a", "b"), "site": ()}

    def __init__(self, max_active: int | None = None, python: str | None = None, dialect: str = "a",
                 site: str = "") -> None:
        self.max_active, self.python, self.dialect, self.site = max_active or 3, python, dialect, site

    def start(self, request: RunRequest) -> str:
        return self.start_bundle([request])

    def start_bundle(self, requests: list[RunRequest]) -> str:
        return ",".join(r.token for r in requests)

    def poll(self, attempts: dict[str, tuple[str, Path]]) -> dict[str, RunStatus]:
        return {token: RunStatus("queued") for token in attempts}

    def cancel(self, runner_id: str) -> None:
        pass

    @staticmethod
    def check_resources(resources: Resources) -> None:
        if resources.qos is not None:
            raise PlanError(f"resources.qos {resources.qos!r}: echo has no QOS")


@pytest.fixture
def echo_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("autogenv2.runners.echo")
    module.EchoRunner = EchoRunner  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "autogenv2.runners.echo", module)
    monkeypatch.setitem(BACKENDS, "echo", "EchoRunner")


@pytest.mark.usefixtures("echo_backend")
def test_a_registered_backend_is_a_profile_kind_with_its_own_settings(tmp_path: Path) -> None:
    path = tmp_path / "machines.toml"
    path.write_text('[machines.e]\nkind = "echo"\ndialect = "b"\nsite = "any text"\nbundle = 4\n'
                    'max_queued = 2\n')
    runner: Any = load_profiles(path)["e"].make_runner()
    assert isinstance(runner, EchoRunner)
    assert (runner.dialect, runner.site, runner.max_active) == ("b", "any text", 2)
    for text, message in (('dialect = "c"', r"dialect 'c': expected one of a, b"),
                          ('site = "a\\nb"', r"site 'a\\nb': expected a single line of text"),
                          ("bundle = 5", r"bundle = 5: a echo runner bundles at most 4"),
                          ('qos = "x"', r"echo has no QOS"),
                          ('flavor = "torque"', r"flavor is a PBS setting")):
        path.write_text(f'[machines.e]\nkind = "echo"\n{text}\n')
        with pytest.raises(PlanError, match=message):
            load_profiles(path)
    path.write_text('[machines.s]\nkind = "slurm"\ndialect = "a"\n')
    with pytest.raises(PlanError, match=r"dialect is a ECHO setting; kind is 'slurm'"):
        load_profiles(path)


def test_the_local_backend_refuses_a_bundle(tmp_path: Path) -> None:
    path = tmp_path / "machines.toml"
    path.write_text('[machines.here]\nkind = "local"\nbundle = 2\n')
    with pytest.raises(PlanError, match=r"\[machines.here\]: bundle = 2: a local runner bundles at most 1"):
        load_profiles(path)


def test_a_registered_code_is_usable_in_a_plan(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    module = types.ModuleType("autogenv2.codes.echo")
    module.METHODS = {"mc": methods_of("toy")["mc"]}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "autogenv2.codes.echo", module)
    monkeypatch.setattr("autogenv2.codes.CODES", (*CODES, "echo"))
    plan = plan_from_dict({"root": str(tmp_path), "steps": [{"name": "a", "code": "echo", "method": "mc"}],
                           "jobs": [{"id": "j"}]})
    assert plan.jobs[0].steps[0].code == "echo"


class CountingWriter(ToyWriter):
    """A code outside the package whose total counts iterations and whose own load check refuses a mean."""

    sampling_unit: ClassVar[str] = "iterations"

    def preflight(self, where: str) -> None:
        if self.mean > 0:
            raise OptionError(f"{where}: option 'mean': {self.mean} > 0 is not a bound state")


@pytest.fixture
def counting_code(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("autogenv2.codes.counting")
    module.METHODS = {"mc": (CountingWriter, methods_of("toy")["mc"][1])}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "autogenv2.codes.counting", module)
    monkeypatch.setattr("autogenv2.codes.CODES", (*CODES, "counting"))


@pytest.mark.usefixtures("counting_code")
def test_a_registered_codes_own_checks_and_unit_are_used_at_load_and_in_progress(tmp_path: Path) -> None:
    """Preflight calls every step's Writer.preflight; the sampling guard and progress use sampling_unit."""
    def plan(**options: object) -> None:
        plan_from_dict({"root": str(tmp_path), "steps": [
            {"name": "a", "code": "toy", "method": "mc", "mean": 1.0},
            {"name": "b", "code": "counting", "method": "mc", **options}], "jobs": [{"id": "j"}]})

    plan(mean=-1.0, nblocks=10**4)
    with pytest.raises(OptionError, match=r"^job 'j', step 'b': option 'mean': 0.5 > 0 is not a bound "
                                          r"state$"):
        plan(mean=0.5)
    with pytest.raises(OptionError, match=r"option 'nblocks': 20000 is far beyond .*\(> 10000 iterations\); "
                                          r"even at 1 s each it costs ≥ 5.56 core-hours"):
        plan(mean=-1.0, nblocks=20_000)
    element = ElementStatus(name="b", code="counting", method="mc", spec={"options": {}},
                            writer={"nblocks": 40}, state=State.needs_more, result={"iterations": [{}] * 3})
    assert progress_line("j/b", element) == "j/b: 3/40 iterations"
