"""The status file of a job, ``<root>/<jobid>/status.json``: what happened, as plain JSON.

``JobStatus`` holds one ``ElementStatus`` per Manager and every attempt each made. The file
is rewritten atomically after every step, so the next ``autogenv2 run`` resumes from the last
completed step whatever killed the previous one.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import StatusError
from .states import State
from .storage import SCHEMA_VERSION, STATUS_FILE, check_schema, quarantine, read_json, write_text_atomic


Phase = Literal["submitting", "queued", "running", "finished", "lost"]


class Attempt(BaseModel):
    """One execution of an element's run by a Runner."""

    model_config = ConfigDict(extra="forbid")

    number: int
    token: str
    runner: str
    runner_id: str = ""
    phase: Phase = "submitting"
    submitted_at: float = Field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    reason: str = ""
    scheduler_state: str = ""
    verdict: str = ""
    blocks: int | None = None

    @property
    def seconds(self) -> float | None:
        """Wall time of the attempt, once it ended."""
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


class ElementStatus(BaseModel):
    """The state of one Manager: its planned spec, effective options, attempts and result."""

    model_config = ConfigDict(extra="forbid")

    name: str
    code: str
    method: str
    spec: dict[str, Any]
    """The step as the plan gave it when last applied (compared with the plan on every run)."""
    writer: dict[str, Any] = Field(default_factory=dict)
    """Effective Writer options (the plan's, plus continuations such as a raised nblocks)."""
    state: State = State.planned
    attempts: list[Attempt] = Field(default_factory=list)
    failures: int = 0
    """Consecutive failed attempts (a continuation that made progress resets it)."""
    result: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict)
    """Artifacts for later elements, relative to the job directory."""
    reason: str = ""
    events: list[dict[str, Any]] = Field(default_factory=list)
    """Decisions taken (plan changes, retries, health checks), oldest first."""
    lineage: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """For each input artifact: the element and attempt that made it, its path and sha256."""
    archived: list[str] = Field(default_factory=list)
    """Directories of earlier versions of this element, kept when a plan change redid it."""

    def log(self, what: str, **details: Any) -> None:
        """Record a decision with a timestamp."""
        self.events.append({"time": round(time.time(), 3), "event": what, **details})


class JobStatus(BaseModel):
    """Everything known about one job; serialized as status.json."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    job_id: str
    variables: dict[str, Any] = Field(default_factory=dict)
    """The plan's variables of this job (scan point), kept for reports."""
    elements: list[ElementStatus] = Field(default_factory=list)
    updated_at: float = Field(default_factory=time.time)

    def element(self, name: str) -> ElementStatus:
        for element in self.elements:
            if element.name == name:
                return element
        raise KeyError(name)

    def save(self, job_dir: Path, durable: bool = True) -> None:
        """Write status.json atomically (``durable=False``: made durable later, see storage.sync_pending)."""
        self.updated_at = time.time()
        # pydantic's compiled encoder: the same indent=1 text as json.dumps, 9x faster (NaN/inf become null)
        write_text_atomic(job_dir / STATUS_FILE, self.model_dump_json(indent=1), durable=durable)

    @classmethod
    def load(cls, job_dir: Path) -> "JobStatus | None":
        """Read status.json, or None if the job has none yet. Corrupt files are moved aside."""
        path = job_dir / STATUS_FILE
        if not path.exists():
            return None
        data = check_schema(read_json(path), path)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            aside = quarantine(path)
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise StatusError(
                f"{path}: invalid status ({where}: {first.get('msg')}); moved it to {aside.name}. "
                f"Restore it with `mv {aside} {path}` after fixing it, or leave it out to start the job afresh."
            ) from None
