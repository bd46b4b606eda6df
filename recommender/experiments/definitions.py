"""The experiments file (TOML), validated at start: the service refuses a file it cannot trust.

One ``[[experiment]]`` table per experiment::

    [[experiment]]
    name = "interest-vs-views"          # letters, digits, - and _; names the report folder
    salt = "2026-11-28"                 # hashed with the user: change it to reshuffle users
    status = "running"                  # running | paused | stopped
    start = 2026-11-28T00:00:00Z        # UTC; inactive before
    end = 2026-12-12T00:00:00Z          # UTC; inactive from then on
    control = "interest"                # the arm the others are compared with (default: first)
    arms = [
      { name = "interest", model = "tfidf_user_interest", weight = 1 },
      { name = "views", model = "knn_collab_filtering_user_course_view", weight = 1 },
    ]

Every experiment takes the same traffic (requests that name no ``model_handle``), so two
experiments marked running may not overlap in time.  Every problem is reported as one line
that names the file: :class:`ExperimentsFileError`.

A file that declares nothing (empty, comments only) or is missing is :class:`NothingDeclared`:
more likely a truncated write or a wrong path than an order to end every experiment, so the
running service keeps what it had (``live.py``).  To run no experiments, say so::

    experiment = []

This module imports no AWS library: gunicorn's master checks the file with it before forking.
"""

from __future__ import annotations

import tomllib
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from recommender.models.registry import get_spec

RUNNING, PAUSED, STOPPED = "running", "paused", "stopped"
FALLBACK = "fallback"  # the variant of an answer given by the default model (the arm's had no row)

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]


class ExperimentsFileError(ValueError):
    """The experiments file cannot be used; the message is one line naming the file."""


class NothingDeclared(ExperimentsFileError):
    """The file is missing or declares nothing at all (not even ``experiment = []``)."""


class Arm(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    model: str
    # A TOML number: a quoted one or a boolean is refused, not read as 2.0 or 1.0.
    weight: float = Field(gt=0, allow_inf_nan=False, strict=True)

    @field_validator("model", mode="before")
    @classmethod
    def _known_model(cls, value: object) -> object:
        # The registry's UnknownModel is a ValueError naming the known handles.
        return get_spec(value.strip().lower()).handle if isinstance(value, str) else value


class Experiment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    salt: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    status: Literal["running", "paused", "stopped"]
    start: datetime
    end: datetime
    arms: tuple[Arm, ...] = Field(min_length=2)
    control: str | None = None

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2026-11-28T00:00:00Z")
        return value.astimezone(timezone.utc)

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        names = [arm.name for arm in self.arms]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"arm name {duplicated[0]!r} is used twice")
        if FALLBACK in names:
            raise ValueError(f"arm name {FALLBACK!r} is reserved (answers from the default model)")
        if self.control is not None and self.control not in names:
            raise ValueError(f"control {self.control!r} is not one of the arms ({', '.join(names)})")
        return self

    @property
    def control_arm(self) -> str:
        return self.control or self.arms[0].name

    def active(self, now: datetime) -> bool:
        return self.status == RUNNING and self.start <= now < self.end


class ExperimentsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment: tuple[Experiment, ...] = ()

    @model_validator(mode="after")
    def _one_per_traffic(self) -> ExperimentsFile:
        names = [e.name for e in self.experiment]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"experiment name {duplicated[0]!r} is used twice")
        running = sorted((e for e in self.experiment if e.status == RUNNING), key=lambda e: e.start)
        for first, second in zip(running, running[1:]):
            if second.start < first.end:
                raise ValueError(
                    f"experiments {first.name!r} and {second.name!r} are both running on the same traffic "
                    f"(requests without model_handle) from {second.start:%Y-%m-%dT%H:%M:%SZ}; pause or stop one")
        return self

    def active(self, now: datetime | None = None) -> Experiment | None:
        """The experiment that takes the traffic now (validation guarantees at most one)."""
        now = now or datetime.now(timezone.utc)
        return next((e for e in self.experiment if e.active(now)), None)

    def get(self, name: str) -> Experiment | None:
        return next((e for e in self.experiment if e.name == name), None)


def _where(loc: tuple) -> str:
    """``experiment[2].arms[1].weight`` from pydantic's location tuple."""
    text = ""
    for part in loc:
        text += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse(text: str, source: str) -> ExperimentsFile:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentsFileError(f"experiments file {source}: not valid TOML: {exc}") from None
    if not raw:
        raise NothingDeclared(f"experiments file {source}: declares nothing; write `experiment = []` to run no experiments")
    try:
        return ExperimentsFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _where(tuple(first.get("loc", ())))
        message = first.get("msg", "invalid").removeprefix("Value error, ")
        raise ExperimentsFileError(f"experiments file {source}: {where + ': ' if where else ''}{message}") from None


def load(path: str | Path) -> ExperimentsFile:
    """Read and validate ``path``; :class:`ExperimentsFileError` (one line) on any problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc.__class__.__name__
        error = NothingDeclared if isinstance(exc, FileNotFoundError) else ExperimentsFileError
        raise error(f"experiments file {path}: cannot be read: {reason.lower()}") from None
    return parse(text, str(path))
