"""QWalk's input grammar: tokenizer, parser into nested sections, serializer, semantic comparison.

QWalk reads whitespace-separated words; ``#`` starts a comment to the end of the line;
``NAME { ... }`` is a section; keywords are case-insensitive and looked up by *first
occurrence at the current level* (so the order of keywords does not matter, except that a
section's type word comes first and repeated sections keep their order); ``INCLUDE file``
is replaced by the words of ``file``, resolved against the process working directory.

This module parses more leniently than QWalk (a glued ``{1}`` is split here, QWalk aborts);
the serializer always writes braces as separate words, which is what QWalk needs.

>>> sec = parse("method { vmc nconfig 100 } # comment")
>>> sec.section("method").type_word, sec.section("method").get("NCONFIG")
('vmc', '100')
>>> compare(parse("m { vmc nblock 2 nstep 10 }"), parse("M { VMC nstep 10.0 nblock 2 }"))
[]
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from ...errors import AutogenError

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eEdD][+-]?\d+)?")
Item = Union[str, "Section"]


class InputSyntaxError(AutogenError, ValueError):
    """A QWalk input (or included file) cannot be parsed: unbalanced braces, missing include."""


@dataclass
class Section:
    """A level of a QWalk input: ``name`` (empty for a whole file) and its words and sections."""

    name: str = ""
    items: list[Item] = field(default_factory=list)

    @property
    def type_word(self) -> str | None:
        """The first word of the section (QWalk's type selector: VMC, MOLECULE, SLATER ...)."""
        return self.items[0] if self.items and isinstance(self.items[0], str) else None

    def words(self) -> list[str]:
        """The bare words of this level (sections skipped)."""
        return [item for item in self.items if isinstance(item, str)]

    def get(self, key: str) -> str | None:
        """QWalk's ``readvalue``: the word after the first ``key`` at this level, or None."""
        for i, item in enumerate(self.items[:-1]):
            if isinstance(item, str) and item.lower() == key.lower():
                following = self.items[i + 1]
                return following if isinstance(following, str) else None
        return None

    def has(self, flag: str) -> bool:
        """QWalk's ``haskeyword`` at this level."""
        return any(isinstance(i, str) and i.lower() == flag.lower() for i in self.items)

    def sections(self, name: str) -> list[Section]:
        """All direct subsections called ``name`` (case-insensitive), in order."""
        return [i for i in self.items if isinstance(i, Section) and i.name.lower() == name.lower()]

    def section(self, name: str) -> Section | None:
        """The first direct subsection called ``name``."""
        found = self.sections(name)
        return found[0] if found else None

    def walk(self) -> Iterator[Section]:
        """This section and every nested one, depth first."""
        yield self
        for item in self.items:
            if isinstance(item, Section):
                yield from item.walk()


def is_number(word: str) -> bool:
    """True for words QWalk would read as a number (``1``, ``-0.5``, ``1e-3``, ``0.``)."""
    return bool(_NUMBER.fullmatch(word))


def tokenize(text: str) -> list[str]:
    """Words of ``text`` with comments removed and braces split into their own words."""
    words: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        words.extend(re.sub(r"([{}])", r" \1 ", line).split())
    return words


def expand_includes(words: list[str], cwd: Path, depth: int = 0) -> list[str]:
    """Replace every ``INCLUDE file`` by the words of ``cwd/file`` (recursively, as QWalk does)."""
    if depth > 20:
        raise InputSyntaxError("INCLUDE nested more than 20 levels deep (a file includes itself?)")
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i].lower() == "include" and i + 1 < len(words):
            path = cwd / words[i + 1]
            if not path.is_file():
                raise InputSyntaxError(f"INCLUDE {words[i + 1]}: file not found in {cwd}")
            out.extend(expand_includes(tokenize(path.read_text()), cwd, depth + 1))
            i += 2
        else:
            out.append(words[i])
            i += 1
    return out


def parse_words(words: Sequence[str], name: str = "") -> Section:
    """Nest a word list into sections; ``NAME {`` opens a section called NAME."""
    stack = [Section(name)]
    for i, word in enumerate(words):
        if word == "{":
            parent = stack[-1]
            label = ""
            if parent.items and isinstance(last := parent.items[-1], str):
                label = last
                parent.items.pop()
            child = Section(label)
            parent.items.append(child)
            stack.append(child)
        elif word == "}":
            if len(stack) == 1:
                raise InputSyntaxError(f"unbalanced braces: '}}' without '{{' at word {i + 1}")
            stack.pop()
        else:
            stack[-1].items.append(word)
    if len(stack) != 1:
        raise InputSyntaxError(f"unbalanced braces: {len(stack) - 1} section(s) not closed "
                               f"(innermost: {stack[-1].name or '{'})")
    return stack[0]


def parse(text: str, cwd: Path | None = None) -> Section:
    """Parse input text; with ``cwd`` the INCLUDEs are expanded relative to it."""
    words = tokenize(text)
    if cwd is not None:
        words = expand_includes(words, cwd)
    return parse_words(words)


def load(path: Path, expand: bool = True) -> Section:
    """Parse a file, expanding INCLUDEs relative to the file's folder (QWalk's cwd when run there)."""
    path = Path(path)
    return parse(path.read_text(), path.parent if expand else None)


# ----------------------------------------------------------------------------- serializer
def format_number(value: float | int) -> str:
    """Numbers as QWalk reads them back exactly (``repr`` of a float, plain ints)."""
    if isinstance(value, bool):
        raise TypeError("booleans are flags, not numbers")
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def dumps(section: Section, indent: str = "  ", width: int = 100) -> str:
    """QWalk text for ``section``'s items (the section itself is not wrapped in braces)."""
    return "".join(_dump_items(section.items, "", indent, width))


def _dump_items(items: Sequence[Item], pad: str, indent: str, width: int) -> Iterator[str]:
    line: list[str] = []
    for item in items:
        if isinstance(item, str):
            line.append(item)
            if len(" ".join(line)) + len(pad) > width:
                yield pad + " ".join(line) + "\n"
                line = []
            continue
        if line:
            yield pad + " ".join(line) + "\n"
            line = []
        inline = _inline(item)
        if inline is not None and len(inline) + len(pad) <= width:
            yield pad + inline + "\n"
        else:
            yield f"{pad}{item.name} {{\n" if item.name else f"{pad}{{\n"
            yield from _dump_items(item.items, pad + indent, indent, width)
            yield pad + "}\n"
    if line:
        yield pad + " ".join(line) + "\n"


def _inline(section: Section) -> str | None:
    if any(isinstance(i, Section) for i in section.items):
        return None
    body = " ".join(section.words())
    head = f"{section.name} " if section.name else ""
    return f"{head}{{ {body} }}" if body else f"{head}{{ }}"


# ----------------------------------------------------------------------------- comparison
def _runs(section: Section) -> tuple[str | None, dict[str, list[Item | list[str]]]]:
    """Split a level into its type word and groups keyed by keyword (order kept within a key).

    A *run* is a non-numeric word followed by the numbers after it; a leading run of numbers
    has the key ``#``. Sections are keyed by their name.
    """
    items = section.items
    first = section.type_word
    kind = first.lower() if first is not None and not is_number(first) else None
    start = 0 if kind is None else 1
    groups: dict[str, list[Item | list[str]]] = {}
    run: list[str] | None = None
    for item in items[start:]:
        if isinstance(item, Section):
            groups.setdefault("{" + item.name.lower(), []).append(item)
            run = None
        elif is_number(item) and run is not None:
            run.append(item)
        else:
            run = [item]
            groups.setdefault("#" if is_number(item) else item.lower(), []).append(run)
    return kind, groups


def _same_word(a: str, b: str, rtol: float, atol: float) -> bool:
    if is_number(a) and is_number(b):
        x, y = float(a.replace("d", "e").replace("D", "e")), float(b.replace("d", "e").replace("D", "e"))
        return math.isclose(x, y, rel_tol=rtol, abs_tol=atol)
    return a.lower() == b.lower()


def compare(a: Section, b: Section, rtol: float = 1e-6, atol: float = 1e-9, where: str = "") -> list[str]:
    """Differences between two inputs as QWalk would read them; an empty list means equivalent.

    Keyword order does not matter; the type word, the order of repeated keywords/sections
    and the order of numbers do. Words compare case-insensitively, numbers within tolerance.
    """
    here = where or a.name or "(top)"
    type_a, runs_a = _runs(a)
    type_b, runs_b = _runs(b)
    if type_a != type_b:
        return [f"{here}: type word {type_a!r} != {type_b!r}"]
    diffs = [f"{here}: {k.lstrip('{')!r} only in the {side} input"
             for side, mine, other in (("first", runs_a, runs_b), ("second", runs_b, runs_a))
             for k in mine if k not in other]
    for key in (k for k in runs_a if k in runs_b):
        left, right = runs_a[key], runs_b[key]
        if len(left) != len(right):
            diffs.append(f"{here}: {key.lstrip('{')!r} occurs {len(left)} vs {len(right)} times")
            continue
        for n, (x, y) in enumerate(zip(left, right, strict=True)):
            if isinstance(x, Section) and isinstance(y, Section):
                diffs.extend(compare(x, y, rtol, atol, f"{here}/{x.name}[{n}]"))
            elif isinstance(x, list) and isinstance(y, list):
                if len(x) != len(y) or not all(_same_word(p, q, rtol, atol)
                                               for p, q in zip(x, y, strict=True)):
                    diffs.append(f"{here}: {' '.join(x)[:80]!r} != {' '.join(y)[:80]!r}")
    return diffs
