"""The one road by which a run reaches the readers: every entrance publishes through :func:`publish_run`.

The entrances are the generator with ``--sink write`` or ``--sink import`` (:mod:`recommender.pipeline`)
and ``similar-users-load`` (:mod:`recommender.cli.load`, an export's items).  Each is only a
source of items; the steps are written once, here and in the sink
(:class:`~recommender.store.publisher.RunPublisher`):

1. the run id and the model handles are checked (:func:`validate_run`) before anything is touched;
2. the sink takes the lock, records the run and creates its table: a run id that exists already
   (published, kept, failed or being written) or a table that exists is refused, and nothing of
   it is touched (:class:`RunExists`);
3. the source writes each model, checking its coverage against the published run first
   (``MIN_COVERAGE_RATIO``, :meth:`RunWrite.check_coverage`) and verifying what it wrote against
   what it claims (:meth:`RunWrite.verify`): counts, and for an export each model's
   ``lists_checksum`` and each item's run id;
4. ``prepare`` (an import: the long wait), then the pointer flip, the commit point, with SIGINT
   and SIGTERM held from just before it (:mod:`recommender.stopping`);
5. after the flip: old runs removed and the lock released; nothing there undoes the run.

Any failure or signal before the flip aborts the run: its table and record go, the lock is
released, and readers keep the previous complete run.  The commands turn the outcome into the
same exit codes and one ``error:`` line (:func:`recommender.cli.common.run_batch`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from recommender.stopping import HeldSignals, checkpoint

log = logging.getLogger(__name__)

#: What :func:`recommender.pipeline.new_run_id` makes (UTC time, a suffix): sortable, and a valid
#: part of a DynamoDB table name and of an S3 key.
RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-z]{1,32}")


class RunRejected(ValueError):
    """A run the lifecycle refuses (bad input, exit 2): nothing of it is published."""


class RunExists(RunRejected):
    """The run id is taken: a run record or a table of that id exists; it is left untouched."""


class CoverageError(RunRejected):
    """A model would publish no user, or far fewer than the run it replaces: refuse before publishing."""


class VerificationFailed(RunRejected):
    """What was written disagrees with what the source claims (item counts, lists checksums)."""


def validate_run(run_id: object, models: Iterable[object]) -> tuple[str, ...]:
    """The run id's shape and the model handles against the registry; the handles as a tuple."""
    from recommender.models.registry import MODEL_HANDLES

    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise RunRejected(f"run id {run_id!r} is not a run id (expected like 20260101T000000Z-0123abcd)")
    handles = tuple(models)
    if not handles:
        raise RunRejected(f"run {run_id} has no model")
    for handle in handles:
        if handle not in MODEL_HANDLES:
            raise RunRejected(f"run {run_id}: unknown model {handle!r}; known models: {', '.join(MODEL_HANDLES)}")
    if len(set(handles)) != len(handles):
        raise RunRejected(f"run {run_id}: a model is listed twice")
    return handles


class Sink(Protocol):
    """A versioned destination (docs/sinks.md): :class:`~recommender.store.publisher.RunPublisher`
    (a new run table, filled by writes or by ImportTable), :class:`~recommender.store.export_sink.ExportSink`
    (files only) or :class:`~recommender.store.jsonl.JsonLinesSink` (dry run).

    ``published`` turns true when ``commit`` has made the run visible (and only then)."""

    published: bool

    def begin(self, run_id: str, models: tuple[str, ...]) -> dict[str, int]:
        """Start the run; the users each model's published run covers (the coverage baseline)."""

    def write(self, model_handle: str, items: Iterable, total: int | None = None, progress: bool = False) -> int:
        """Write a block of a model's items from this process; the count written."""

    def target(self) -> object | None:
        """Where a partition writes its block itself (picklable, ``.write(items)``), or None: the driver writes."""

    def commit(self, counts: dict[str, int], summary: str = "", at_commit_point: Callable[[], None] = ...) -> None:
        """Make the run visible (``counts``: each model's items); ``at_commit_point`` is called just before."""

    def abort(self) -> None:
        """Before the commit: remove what the run created, release what it holds."""

    def finish(self, clean_up: bool = True) -> list[str]:
        """After the commit: remove what is no longer needed (``clean_up``), release what the run holds."""


def check_coverage(handle: str, covered: int, before: int | None, min_ratio: float) -> None:
    if covered == 0:
        raise CoverageError(f"model {handle} covers no user (before: {before or 0:,}, after: 0); not publishing")
    if before and covered < min_ratio * before:
        raise CoverageError(
            f"model {handle} covers {covered:,} users, fewer than {min_ratio:g} of the {before:,} of the published run "
            f"(before: {before:,}, after: {covered:,}); not publishing (--force or MIN_COVERAGE_RATIO=0 to publish anyway)")


@dataclass
class RunWrite:
    """What a source needs while it writes a run: the published run's coverage, and the checks."""

    run_id: str
    previous: dict[str, int]
    min_coverage_ratio: float

    def check_coverage(self, handle: str, covered: int) -> None:
        check_coverage(handle, covered, self.previous.get(handle), self.min_coverage_ratio)

    def verify(self, handle: str, what: str, claimed: object, found: object) -> None:
        """``found`` (what was written) must be what the source claims, or the run is not published."""
        if claimed != found:
            raise VerificationFailed(f"model {handle}: {what} {found!r} where {claimed!r} was expected; not publishing")


@dataclass
class Published:
    """The run is live; what happened after the flip."""

    removed_runs: list[str] = field(default_factory=list)
    #: The clean-up or the lock release failed (the next run removes what is left; the lease expires).
    cleanup_error: str | None = None
    #: SIGINT or SIGTERM received from the flip on, held until the clean-up was done.
    signal: int | None = None


def publish_run(sink: Sink, run_id: str, models: tuple[str, ...], write: Callable[[RunWrite], dict[str, int]],
                summary: Callable[[], str], *, min_coverage_ratio: float) -> Published:
    """Begin the run in ``sink``, let ``write`` write it (it returns each model's item count), then
    publish it (module docstring).

    ``summary`` is called once everything is written: the text kept with the run record.  Raises
    whatever failed before the flip, after aborting the run; from the flip on nothing is raised
    (a held signal is returned in :attr:`Published.signal`).
    """
    held = HeldSignals()
    try:
        previous = sink.begin(run_id, models)
        counts = write(RunWrite(run_id, previous, min_coverage_ratio))
        checkpoint("commit")
        # Long work before the flip (an import) is still interruptible; from ``held.start`` on, a
        # signal is acted on only once the flip's outcome is known (it is one request).
        sink.commit(counts, summary(), held.start)
    except BaseException:
        if not sink.published:  # (once published, e.g. a failure logging the flip: carry on as published)
            try:
                sink.abort()
            finally:
                held.stop(replay=True)  # a signal held during a failed flip: raised now, the run not published
            raise
    done = _after_publish(sink, run_id)
    held.stop()
    done.signal = held.received[0] if held.received else None
    return done


def _after_publish(sink: Sink, run_id: str) -> Published:
    """Past the commit point (signals held): remove old runs and release the lock; nothing here undoes the run."""
    done = Published()
    try:
        checkpoint("published")
        checkpoint("cleanup")
    except Exception as exc:  # noqa: BLE001 - the run is live whatever failed here
        done.cleanup_error = f"removing old runs: {exc.__class__.__name__}: {exc}"
    try:
        done.removed_runs = sink.finish(clean_up=done.cleanup_error is None)
    except Exception as exc:  # noqa: BLE001
        done.cleanup_error = done.cleanup_error or f"removing old runs: {exc.__class__.__name__}: {exc}"
    if done.cleanup_error:
        log.warning("run %s is published; %s (the next run cleans up)", run_id, done.cleanup_error)
    return done
