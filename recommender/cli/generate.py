"""Batch generator: fit the similarity models and publish every user's top-N neighbours.

Every failure ends with one line on stderr and an exit status a scheduler can act on (see
:data:`recommender.cli.common.EXIT_CODES`).  SIGTERM (systemd stop, ``timeout``, Kubernetes) is
handled like Ctrl-C: before the pointer flip the run's table and record are removed and the lock
released, so the next run need not wait for the lease to expire; after it the run stays
published, and the generator ends with exit 4 once the clean-up is done
(:func:`recommender.cli.common.run_batch`, :mod:`recommender.publishing`; docs/operations/index.md).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from recommender.cli.common import (
    BAD_INPUT, INTERRUPTED, STOPPED_AFTER_PUBLISH, TERMINATED, add_models_argument, batch_settings, exit_codes_epilog,
    fail, run_batch, top_n,
)
from recommender.config import GeneratorSettings
from recommender.data.preflight import UsageError, check_sink, preflight
from recommender.models.registry import tables_for

if TYPE_CHECKING:
    from recommender.pipeline import RunReport

log = logging.getLogger("run_generator")


class _DeprecatedAlias(argparse.Action):
    """``--publish``, the former name of ``--sink``: still accepted, with a line saying so."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"warning: {option_string} is deprecated; use --sink {values}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def parse_args(argv: list[str] | None, settings: GeneratorSettings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run_generator.py", description=__doc__.split("\n\n")[0],
                                     epilog=exit_codes_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    add_models_argument(parser)
    parser.add_argument("--top-n", type=top_n, default=settings.top_n, help="neighbours per user, 1..100 (default: %(default)s, env TOP_N)")
    parser.add_argument("--data-dir", default=settings.data_dir,
                        help="folder or s3://bucket/prefix with the four CSVs (default: %(default)s, env DATA_DIR)")
    parser.add_argument("--dry-run", metavar="FILE", type=Path, help="write JSON lines to FILE instead of DynamoDB")
    parser.add_argument("--sink", dest="sink", choices=("write", "export", "import"), default=settings.sink,
                        help="write: BatchWriteItem into a new run table; export: DynamoDB-JSON files at --export-uri "
                             "only; import: export to S3, then ImportTable (AWS) (default: %(default)s, env SINK; docs/sinks.md)")
    parser.add_argument("--publish", dest="sink", choices=("write", "export", "import"), action=_DeprecatedAlias,
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--export-uri", metavar="DIR|s3://BUCKET/PREFIX", default=settings.export_uri,
                        help="where --sink export / import put the run's files (env EXPORT_URI)")
    parser.add_argument("--report", metavar="FILE", type=Path,
                        help="write the run summary as JSON to FILE (default: RUN_REPORT_DIR/<run_id>.json)")
    parser.add_argument("--force", action="store_true",
                        help="publish even when a model covers far fewer users than its published run (MIN_COVERAGE_RATIO)")
    parser.add_argument("--search", choices=("exact", "ann", "auto"), default=settings.search,
                        help="all-users search: exact, ann (sparse vectors: cluster index; dense: faiss IVF + exact "
                             "re-ranking; fails below MIN_RECALL), auto: exact up to AUTO_EXACT_MAX_USERS users of a model, "
                             "above it ann at an effort that reaches MIN_RECALL, else exact (default: %(default)s, env SEARCH)")
    parser.add_argument("--engine", choices=("local", "dask"), default=settings.engine,
                        help="where the exact search, the reasons and the writes run (default: %(default)s, env ENGINE)")
    parser.add_argument("--scheduler", metavar="ADDRESS", default=settings.dask_scheduler_address,
                        help="with --engine dask: scheduler address; default: a LocalCluster of DASK_WORKERS processes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (they go to stderr)")
    return parser.parse_args(argv)


def _export_sink(args: argparse.Namespace, settings: GeneratorSettings):
    """``--sink export`` (files only) or ``--sink import`` (files on S3, then ImportTable and the pointer flip)."""
    from recommender.store.dynamo import DynamoStore
    from recommender.store.export_location import ExportLocation
    from recommender.store.export_sink import ExportSink
    from recommender.store.import_publisher import import_publisher

    location = ExportLocation(args.export_uri, settings.s3_endpoint_url)
    if args.sink == "export":
        return ExportSink(location)
    return import_publisher(
        DynamoStore.for_generator(settings), location,
        poll_seconds=settings.import_poll_seconds,
        timeout_seconds=settings.import_timeout_seconds,
        billing_mode=settings.import_billing_mode,
        read_capacity=settings.import_read_capacity,
        write_capacity=settings.import_write_capacity,
        lease_seconds=settings.generator_lock_lease_seconds,
        keep_runs=settings.keep_runs,
    )


def main(argv: list[str] | None = None) -> int:
    settings = batch_settings()
    if isinstance(settings, int):
        return settings
    args = parse_args(argv, settings)
    try:  # usage and environment mistakes, before any work (and before pandas is imported)
        preflight(args.data_dir, tables_for(args.models), {"--dry-run": args.dry_run, "--report": args.report})
        check_sink(args.sink, args.export_uri, args.dry_run)
    except UsageError as exc:
        return fail(BAD_INPUT, str(exc))

    # After argument parsing: --help stays instant.
    from recommender import pipeline
    from recommender.data.loader import DataValidationError
    from recommender.data.sources import DataSourceError
    from recommender.search.options import SearchOptions
    from recommender.search.recall import RecallTooLow
    from recommender.store.dynamo import DynamoStore
    from recommender.store.jsonl import JsonLinesSink
    from recommender.store.publisher import RunPublisher

    sink = None

    def body() -> RunReport:
        nonlocal sink
        executor = None
        try:
            if args.engine == "dask":
                from recommender.executor import DaskExecutor
                from recommender.search.dask_engine import DaskEngine

                executor = DaskExecutor(DaskEngine(args.scheduler, settings.dask_workers))
            else:
                from recommender.executor import LocalExecutor

                executor = LocalExecutor()
            if args.dry_run:
                sink = JsonLinesSink(args.dry_run)
            elif args.sink != "write":
                sink = _export_sink(args, settings)
            else:
                sink = RunPublisher(
                    DynamoStore.for_generator(settings),
                    lease_seconds=settings.generator_lock_lease_seconds,
                    keep_runs=settings.keep_runs,
                    write_threads=settings.write_threads,
                )
            return pipeline.run(
                args.data_dir,
                sink,
                args.models,
                args.top_n,
                progress=not args.no_progress,
                model_params=settings.model_params,
                min_coverage_ratio=0.0 if args.force else settings.min_coverage_ratio,
                s3_endpoint_url=settings.s3_endpoint_url,
                search=SearchOptions.from_settings(settings, args.search),
                explain=settings.explain,
                executor=executor,
            )
        finally:
            if executor is not None:
                executor.close()

    outcome = run_batch("generator", body, lambda: sink is not None and sink.published,
                        bad_input=(DataValidationError,), failed=(DataSourceError, RecallTooLow))
    if outcome.result is not None:  # published: the summary is written even when a signal ends the run
        _summarise(outcome.result, args.report or settings.run_report_dir / f"{outcome.result.run_id}.json")
    if outcome.code in (INTERRUPTED, TERMINATED, STOPPED_AFTER_PUBLISH):
        # The signal lands anywhere, e.g. half-way through building a native object (numba's
        # compiler): collect such objects now, so that their finalizers' complaints reach stderr
        # before the operator's one line, not after it at interpreter exit.
        gc.collect()
    return outcome.exit()


def _summarise(report: RunReport, report_path: Path) -> None:
    """Log what the published run did and write its summary file."""
    log.info(
        "run %s done in %.1fs (load %.1fs; rows read %s; dropped %s; removed old runs: %s): %s",
        report.run_id,
        report.total_seconds,
        report.load_seconds,
        report.rows_read,
        {table: sum(reasons.values()) for table, reasons in report.dropped.items()},
        ", ".join(report.removed_runs) or "none",
        "; ".join(f"{m.handle} {m.users_covered} users fit {m.fit_seconds:.1f}s search {m.search_seconds:.1f}s "
                  f"write {m.items_written} items {m.write_seconds:.1f}s" for m in report.models),
    )
    try:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(report.to_json())
    except OSError as exc:  # the run is published; a summary we cannot write is only a warning
        log.warning("could not write the run summary to %s: %s", report_path, exc)


def run() -> NoReturn:
    """The process entry (``similar-users-generate``, ``run_generator.py``): :func:`main`, then exit
    with its status without the interpreter's teardown.

    Why: a native thread pool still alive at teardown (Arrow's CSV reader is one) can end the
    process with SIGABRT ("terminate called without an active exception") after the one ``error:``
    line was printed, so the operator's script would see -6 instead of the documented status.
    Everything the run writes is closed by then; logs and the standard streams are flushed here.
    """
    try:
        code = main()
    except SystemExit as exc:  # argparse: --help, usage errors
        if not isinstance(exc.code, int | None):
            raise
        code = exc.code or 0
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
