"""What every command line shares: the exit codes, the ``error:`` line, the batch commands' settings,
the run of a command that publishes (:func:`run_batch`) and the ``--models`` argument.

The exit codes are a contract with schedulers (systemd's ``SuccessExitStatus``, cron wrappers,
Kubernetes job policies), so they are written once here; the generator's ``--help``, the table in
``docs/operations/publishing.md`` and the scheduling examples are checked against :data:`EXIT_CODES`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from recommender.config import GeneratorSettings, SettingsError, load_settings
from recommender.models.registry import MODEL_HANDLES

OK, FAILED, BAD_INPUT, LOCKED, STOPPED_AFTER_PUBLISH, INTERRUPTED, TERMINATED = 0, 1, 2, 3, 4, 130, 143

EXIT_CODES: dict[int, str] = {
    OK: "success: the run is published",
    FAILED: "failed: database, S3 or model failure (after retries), or `--search ann` under MIN_RECALL; the previous run stays published",
    BAD_INPUT: "bad input or usage: one line names the setting, file, column, row, model or run; nothing is published",
    LOCKED: "lock held: another generator run holds the lock; nothing was done",
    STOPPED_AFTER_PUBLISH: "stopped after publishing (SIGINT or SIGTERM after the pointer flip): the new run is published and serves",
    INTERRUPTED: "interrupted (SIGINT, Ctrl-C) before the pointer flip: the run's table and record are removed, the lock released",
    TERMINATED: "terminated (SIGTERM: systemd stop, timeout, Kubernetes) before the pointer flip: same clean-up as SIGINT",
}


def exit_codes_epilog() -> str:
    return "exit status:\n" + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items())


def fail(code: int, message: str) -> int:
    """Print the one ``error:`` line of a command that stops, and return its exit code."""
    print(f"error: {message}", file=sys.stderr)
    return code


def batch_settings() -> GeneratorSettings | int:
    """The generator's settings (environment over ``.env``) with the batch commands' log format, or
    the exit code after the ``error:`` line naming the bad setting (the generator and the loader)."""
    try:
        settings = load_settings(GeneratorSettings)
    except SettingsError as exc:
        return fail(BAD_INPUT, str(exc))
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return settings


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that the run's clean-up runs (like KeyboardInterrupt)."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not interrupt the clean-up
    raise Terminated()


def _stopped(signal_name: str, published: bool) -> tuple[int, str]:
    """The exit code and the last line for a run ended by SIGINT or SIGTERM."""
    verb = "interrupted" if signal_name == "SIGINT" else "terminated"
    if published:
        return STOPPED_AFTER_PUBLISH, f"{verb} ({signal_name}) after the run was published; the new run serves, nothing was undone"
    return (INTERRUPTED if signal_name == "SIGINT" else TERMINATED), f"{verb} ({signal_name}); the run was not published"


@dataclass
class Outcome:
    """How a publishing command ended: its exit code, the ``error:`` line (None on success) and what
    its body returned (a published run's report, also when a signal ended it after the flip)."""

    code: int
    message: str | None = None
    result: Any = None

    def exit(self) -> int:
        return fail(self.code, self.message) if self.message is not None else self.code


log = logging.getLogger(__name__)


def run_batch(name: str, body: Callable[[], Any], published: Callable[[], bool], *, bad_input: tuple[type[BaseException], ...] = (),
              failed: tuple[type[BaseException], ...] = ()) -> Outcome:
    """Run a command that publishes (the generator, the loader) under the one exit-code contract.

    SIGTERM is handled like Ctrl-C while ``body`` runs, so that :func:`recommender.publishing.publish_run`
    aborts the run before the flip; after it, the run stays published and the command ends with 4.
    ``published`` tells whether the flip went through (for an error or a signal that reaches here).
    """
    from recommender.publishing import RunRejected
    from recommender.stopping import StoppedAfterPublish
    from recommender.store.dynamo import StoreUnavailable
    from recommender.store.export_location import ExportFailed
    from recommender.store.import_publisher import ImportFailed
    from recommender.store.lock import LockHeld, LockLost
    from recommender.store.retry import RetriesExhausted

    previous_handler = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return Outcome(OK, None, body())
    except (RunRejected, *bad_input) as exc:
        return Outcome(BAD_INPUT, str(exc))
    except LockHeld as exc:
        return Outcome(LOCKED, str(exc))
    except (StoreUnavailable, LockLost, RetriesExhausted, ExportFailed, ImportFailed, *failed) as exc:
        return Outcome(FAILED, str(exc))
    except StoppedAfterPublish as exc:  # the signal was held until the clean-up was done
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as after any SIGTERM: a second one must not interrupt us
        return Outcome(*_stopped(exc.signal_name, published=True), exc.report)
    except KeyboardInterrupt:
        return Outcome(*_stopped("SIGINT", published=published()))
    except Terminated:
        return Outcome(*_stopped("SIGTERM", published=published()))
    except Exception as exc:  # noqa: BLE001 - the operator gets one line; the log has the trace
        log.debug("run failed", exc_info=True)
        if published():  # e.g. closing the executor after the run: it stays published
            log.warning("run published, then: %s: %s", exc.__class__.__name__, exc)
            return Outcome(OK)
        return Outcome(FAILED, f"{name} failed: {exc.__class__.__name__}: {exc}")
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


def parse_models(text: str) -> tuple[str, ...]:
    """``a,b`` → registered handles (case-insensitive); argparse turns the ValueError into a usage error."""
    models = tuple(dict.fromkeys(m.strip().lower() for m in text.split(",") if m.strip()))
    unknown = [m for m in models if m not in MODEL_HANDLES]
    if unknown or not models:
        raise argparse.ArgumentTypeError(
            f"unknown model {unknown[0] if unknown else '(none given)'}; known models: {', '.join(MODEL_HANDLES)}")
    return models


def add_models_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", type=parse_models, default=MODEL_HANDLES, metavar="HANDLES",
                        help=f"comma-separated model handles (default: all: {','.join(MODEL_HANDLES)})")


def top_n(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to 100, not {text!r}")
    return value
