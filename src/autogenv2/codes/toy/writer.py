"""Toy Writer: ``params.json`` plus a self-contained ``run.py`` (standard library only).

The series is x_i = phi * x_{i-1} + sqrt(1 - phi^2) * sigma * g_i, energy_i = mean + x_i, with
x_{-1} drawn from the stationary distribution and g_i a unit normal from ``Random(f"{seed}:{i}")``.
Two knobs imitate what health checks look for: an equilibration ``transient`` added to the first
blocks, and walker ``weight``s that grow block after block when ``tstep`` > ``stable_tstep``.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from ..base import ReadResult, Writer

OUTPUT = "blocks.json"
STARTS = "starts.txt"
"""One line per process start (pid): lets tests count how often the program really ran."""

SCRIPT = '''\
"""Toy MC run written by autogenv2: options are in params.json; rerun to continue."""
import json
import math
import os
import random
import time

P = json.load(open("params.json"))
with open(P["starts"], "a") as log:
    log.write(f"{os.getpid()}\\n")
series = {"energy": [], "x": []}
if os.path.exists(P["output"]):
    series = json.load(open(P["output"]))


def save(data):
    tmp = P["output"] + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, P["output"])


x = series["x"][-1] if series["x"] else P["sigma"] * random.Random(f"{P['seed']}:start").gauss(0.0, 1.0)
scale = math.sqrt(1.0 - P["phi"] ** 2) * P["sigma"]
for i in range(len(series["energy"]), min(P["nblocks"], P.get("attempt_limit") or P["nblocks"])):
    time.sleep(P["seconds_per_block"])
    x = P["phi"] * x + scale * random.Random(f"{P['seed']}:{i}").gauss(0.0, 1.0)
    series["energy"].append(P["mean"] + x + P["transient"] * math.exp(-i / P["transient_blocks"]))
    series["x"].append(x)
    series.setdefault("weight", []).append(1.0 + (0.05 * i if P["tstep"] > P["stable_tstep"] else 0.0))
    save(series)
print(f"toy mc finished: {len(series['energy'])} blocks", flush=True)
'''


class ToyWriter(Writer):
    """A toy Monte Carlo run: ``nblocks`` AR(1)-correlated energies, ``seconds_per_block`` each."""

    sampling: ClassVar[tuple[str, ...]] = ("nblocks",)
    timestep_option: ClassVar[str | None] = "tstep"

    nblocks: int = Field(20, ge=1, description="total blocks over all attempts")
    attempt_limit: int | None = Field(None, ge=1,
                                      description="set by the Manager: blocks to reach this attempt")
    mean: float = -1.0
    sigma: float = Field(0.1, gt=0, description="stationary standard deviation of one block")
    phi: float = Field(0.5, ge=0, lt=1, description="lag-1 autocorrelation of the blocks")
    seconds_per_block: float = Field(0.01, ge=0)
    seed: int = Field(1, ge=0)
    transient: float = Field(0.0, description="Ha added to block i as transient*exp(-i/transient_blocks)")
    transient_blocks: float = Field(5.0, gt=0)
    tstep: float = Field(0.01, gt=0,
                         description="a DMC-like timestep: above stable_tstep the weights blow up")
    stable_tstep: float = Field(0.05, gt=0)
    python: str | None = None

    def write(self, directory: Path, inputs: Mapping[str, Path]) -> list[str]:
        params = {"output": OUTPUT, "starts": STARTS, "nblocks": self.nblocks, "mean": self.mean,
                  "sigma": self.sigma, "phi": self.phi, "seconds_per_block": self.seconds_per_block,
                  "seed": self.seed, "transient": self.transient, "transient_blocks": self.transient_blocks,
                  "tstep": self.tstep, "stable_tstep": self.stable_tstep, "attempt_limit": self.attempt_limit}
        (directory / "params.json").write_text(json.dumps(params, indent=1))
        (directory / "run.py").write_text(SCRIPT)
        return ["params.json", "run.py"]

    def command(self) -> list[str]:
        return [self.python or sys.executable, "run.py"]

    def blocks_written(self, directory: Path) -> int | None:
        try:
            return len(json.loads((directory / OUTPUT).read_text())["energy"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def extend(self, result: ReadResult) -> None:
        self.nblocks = int(result.more.get("nblocks", self.nblocks))
