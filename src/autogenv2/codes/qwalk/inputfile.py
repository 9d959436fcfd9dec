"""QWalk's input file: its METHOD sections and keywords, tokenized like QWalk does (``INCLUDE`` expanded).

Nothing here raises on damaged files: an unreadable file gives no words.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_WORD = re.compile(r"[{}]|[^\s{}]+")


def tokenize(text: str) -> list[str]:
    """QWalk's words: whitespace-separated, ``#`` comments to end of line, braces split off."""
    words: list[str] = []
    for line in text.splitlines():
        words += _WORD.findall(line.split("#", 1)[0])
    return words


def read_words(path: Path, base: Path, depth: int = 0) -> list[str]:
    """Words of ``path`` with ``INCLUDE file`` expanded (relative to ``base``, the run's cwd)."""
    try:
        words = tokenize(Path(path).read_text(errors="replace"))
    except OSError:
        return []
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i].lower() == "include" and i + 1 < len(words) and depth < 8:
            name = words[i + 1]
            if not Path(name).is_absolute() and ".." not in Path(name).parts:
                out += read_words(base / name, base, depth + 1)
            i += 2
            continue
        out.append(words[i])
        i += 1
    return out


@dataclass
class MethodSpec:
    """One ``METHOD { NAME key value ... }`` of the input; ``keys`` holds top-level words (upper case)."""

    name: str
    keys: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.keys.get(key.upper(), default)


def parse_input(path: Path, base: Path) -> tuple[list[MethodSpec], str | None]:
    """The METHOD sections in order, and the global RUNID if one is set."""
    words = read_words(path, base)
    methods: list[MethodSpec] = []
    runid = None
    depth, i = 0, 0
    while i < len(words):
        word = words[i]
        if depth == 0 and word.lower() == "method" and i + 1 < len(words) and words[i + 1] == "{":
            section, i = _section(words, i + 2)
            if section:
                methods.append(MethodSpec(section[0].upper(), _top_keys(section[1:])))
            continue
        if depth == 0 and word.lower() == "runid" and i + 1 < len(words):
            runid = words[i + 1]
        depth += (word == "{") - (word == "}")
        i += 1
    return methods, runid


def _section(words: list[str], i: int) -> tuple[list[str], int]:
    depth, start = 1, i
    while i < len(words) and depth:
        depth += (words[i] == "{") - (words[i] == "}")
        i += 1
    return words[start:i - 1 if depth == 0 else i], i


def _top_keys(words: list[str]) -> dict[str, str]:
    keys: dict[str, str] = {}
    depth = 0
    for word, nxt in zip(words, words[1:] + [""], strict=False):  # no words: no pairs
        if word in "{}":
            depth += 1 if word == "{" else -1
        elif depth == 0:
            keys.setdefault(word.upper(), nxt)
    return keys
