"""The wrapper every backend runs: ``python -m autogenv2.runners.launch TOKEN [--walltime S] -- ARGV``.

It records ``.autogenv2/TOKEN.started`` (pid, host, time) before the program starts and
``.autogenv2/TOKEN.exit`` (exit code, reason, times) after it ends, both atomically, so a
later ``autogenv2 run`` learns the outcome from the run directory even when the scheduler has
forgotten the job or autogenv2 itself was killed meanwhile.

Exit codes follow Python's convention: -N means the program died of signal N. A program
stopped by the ``--walltime`` limit gets reason ``walltime``; one stopped because the wrapper
received SIGTERM/SIGINT (scancel, qdel, a scheduler's time limit) gets ``terminated``.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..storage import write_json_atomic

GRACE_SECONDS = 10.0
"""Between SIGTERM and SIGKILL when stopping the program."""


def default_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for QMC programs: one OpenMP thread (measured faster), unbuffered output."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")
    env.update(extra or {})
    return env


def run(token: str, argv: list[str], walltime: float | None) -> int:
    """Run ``argv`` in the current directory with marker files; return the wrapper's exit code."""
    markers = Path(".autogenv2")
    markers.mkdir(mode=0o755, exist_ok=True)
    if not claim(markers, token):
        print(f"autogenv2: attempt {token} was already started or abandoned; not starting it again",
              file=sys.stderr, flush=True)
        return 0
    started = time.time()
    write_json_atomic(markers / f"{token}.started",
                      {"pid": os.getpid(), "host": socket.gethostname(), "started_at": started})
    reason = ""
    stop_requested: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        stop_requested.append("terminated")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        child = subprocess.Popen(argv, env=default_env(), stdin=subprocess.DEVNULL)
    except OSError as exc:
        print(f"autogenv2: cannot start {argv[0]!r}: {exc}", file=sys.stderr, flush=True)
        write_exit(markers, token, 127, "cannot start program", started)
        return 127
    deadline = started + walltime if walltime else None
    while True:
        try:
            code = child.wait(timeout=0.2)
            reason = stop_requested[0] if stop_requested else ""  # the signal may reach both at once
            break
        except subprocess.TimeoutExpired:
            pass
        if stop_requested or (deadline is not None and time.time() > deadline):
            reason = stop_requested[0] if stop_requested else "walltime"
            code = stop(child)
            break
    write_exit(markers, token, code, reason, started)
    return 0 if code == 0 else 1


def claim(markers: Path, token: str) -> bool:
    """Create ``TOKEN.claim`` exclusively: True for the one process that may run this attempt.

    autogenv2 claims the token itself when it abandons an attempt that never started, so a
    launch that arrives late can never run the program a second time.
    """
    try:
        os.close(os.open(markers / f"{token}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    return True


def stop(child: subprocess.Popen[bytes]) -> int:
    """SIGTERM, wait up to GRACE_SECONDS, then SIGKILL; return the child's exit code."""
    child.terminate()
    try:
        return child.wait(timeout=GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        return child.wait()


def write_exit(markers: Path, token: str, code: int, reason: str, started: float) -> None:
    write_json_atomic(markers / f"{token}.exit",
                      {"exit_code": code, "reason": reason, "started_at": started, "ended_at": time.time()})


def detach(token: str) -> bool:
    """Fork; the parent waits until the child recorded its start, then returns False to exit.

    The child starts a new session and returns True: it belongs to no ``autogenv2`` process,
    so it outlives the one that started it and leaves no zombie behind.
    """
    pid = os.fork()
    if pid == 0:
        os.setsid()
        return True
    marker = Path(".autogenv2") / f"{token}.started"
    for _ in range(200):
        if marker.exists():
            break
        time.sleep(0.025)
    return False


def main(args: list[str]) -> int:
    """Parse ``[--detach] TOKEN [--walltime SECONDS] -- ARGV...``."""
    os.umask(os.umask(0o022) | 0o022)  # run directories are never group- or world-writable
    detached = bool(args) and args[0] == "--detach"
    args = args[1:] if detached else args
    if "--" not in args or args.index("--") == 0:
        print("usage: python -m autogenv2.runners.launch [--detach] TOKEN [--walltime S] -- ARGV...",
              file=sys.stderr)
        return 2
    split = args.index("--")
    head, argv = args[:split], args[split + 1:]
    token, walltime = head[0], None
    if len(head) == 3 and head[1] == "--walltime":
        walltime = float(head[2])
    if detached and not detach(token):
        return 0
    return run(token, argv, walltime)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
