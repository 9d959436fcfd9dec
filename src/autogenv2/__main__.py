"""``autogenv2`` / ``python -m autogenv2``: dispatch, keeping the everyday commands free of heavy imports."""
from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from pathlib import Path


def fast(args: list[str], held: ExitStack) -> int | None:
    """A no-op ``run PLAN``, ``--help``, ``status`` and ``results`` without loading the CLI framework."""
    if len(args) == 2 and args[0] == "run" and not args[1].startswith("-"):
        done = fast_noop_run(Path(args[1]), held)
        return done if done is not None else fast_run(Path(args[1]))
    from .quick import fast as quick

    return quick(args)


def fast_run(plan: Path) -> int | None:
    """A pass of ``run PLAN`` with work, without the CLI framework (imported only to report a bug)."""
    from . import quick
    from .errors import EXIT_ERROR, AutogenError

    try:
        return quick.run(plan)
    except AutogenError as exc:
        quick.report_error(exc)
        return EXIT_ERROR
    except KeyboardInterrupt:
        from .cli import _interrupted

        return _interrupted()
    except Exception as exc:  # noqa: BLE001 - reported as the CLI reports it
        from .cli import unexpected

        return unexpected(exc)


def fast_noop_run(plan: Path, held: ExitStack) -> int | None:
    """The answer of ``run PLAN`` when nothing can change (see fastpath.noop_counts), else None.

    When the pass has work, the root's lock taken here stays in ``held`` for the full pass, which
    shares it (and the plan file already read) instead of taking it again.
    """
    from .errors import EXIT_FAILED, EXIT_OK, AutogenError
    from .fastpath import failed_rows, failure_line, has_index, noop_counts
    from .lock import read_plan_file, root_lock

    found = read_plan_file(plan)
    if found.problem or not has_index(found.root):
        return None  # the full CLI reports the problem, or makes the first pass
    try:
        held.enter_context(root_lock(found.root))
    except AutogenError:
        return None  # let the full CLI report it
    counts = noop_counts(found)
    if counts is None:
        return None
    total = sum(counts.values())
    print("nothing to do: every job is done or failed")
    states = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    print(f"{found.root}: {total} elements: {states}")
    failed = failed_rows(found.root) if counts.get("failed") or counts.get("blocked") else []
    if failed:
        print(failure_line(failed))
    return EXIT_FAILED if failed else EXIT_OK


def safe_umask() -> None:
    """Whatever the caller's umask, nothing autogenv2 creates is group- or world-writable."""
    os.umask(os.umask(0o022) | 0o022)


def main(argv: list[str] | None = None) -> int:
    safe_umask()
    args = sys.argv[1:] if argv is None else argv
    with ExitStack() as held:  # a root lock the fast path took, kept for the full pass
        done = fast(args, held)
        if done is not None:
            return done
        from .cli import main as cli_main

        return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
