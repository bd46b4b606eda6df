#!/usr/bin/env python
"""Batch generator: fit the similarity models and write every user's top-N neighbours.

Exit status: 0 success; 1 the database or a model failed; 2 bad input or usage (file, column or
row named); 3 another generator run holds the lock; 130 interrupted.  Always one line on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from recommender.config import load_settings
from recommender.data.loader import DataValidationError
from recommender.data.sources import DataSourceError
from recommender.models.registry import MODEL_HANDLES
from recommender.store.dynamo import DynamoStore, StoreUnavailable
from recommender.store.jsonl import JsonLinesSink
from recommender.store.publisher import LockHeld, LockLost, RunPublisher
from recommender.store.retry import RetriesExhausted

log = logging.getLogger("run_generator")


def parse_args(argv: list[str] | None, default_top_n: int, default_data: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--models",
        default=",".join(MODEL_HANDLES),
        help="comma-separated model handles (default: all: %(default)s)",
    )
    parser.add_argument("--top-n", type=int, default=default_top_n, help="neighbours per user (default: %(default)s, env TOP_N)")
    parser.add_argument("--data-dir", default=default_data, help="folder or s3://bucket/prefix with the four CSVs (default: %(default)s, env DATA_DIR)")
    parser.add_argument("--dry-run", metavar="FILE", type=Path, help="write JSON lines to FILE instead of DynamoDB")
    parser.add_argument("--report", metavar="FILE", type=Path, help="write the run summary as JSON to FILE (default: RUN_REPORT_DIR/<run_id>.json)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (they go to stderr)")
    args = parser.parse_args(argv)
    models = tuple(m.strip().lower() for m in args.models.split(",") if m.strip())
    unknown = [m for m in models if m not in MODEL_HANDLES]
    if unknown or not models:
        parser.error(f"unknown model {unknown[0] if unknown else '(none given)'}; known models: {', '.join(MODEL_HANDLES)}")
    if args.top_n < 1 or args.top_n > 100:
        parser.error("--top-n must be between 1 and 100")
    args.models = models
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv, settings.top_n, settings.data_dir)

    from recommender import pipeline  # after argument parsing: --help stays instant

    try:
        if args.dry_run:
            sink = JsonLinesSink(args.dry_run)
        else:
            sink = RunPublisher(
                DynamoStore.for_generator(settings),
                lease_seconds=settings.lock_lease_seconds,
                keep_runs=settings.keep_runs,
                write_threads=settings.write_threads,
            )
        report = pipeline.run(
            args.data_dir,
            sink,
            args.models,
            args.top_n,
            block_mb=settings.topk_block_mb,
            progress=not args.no_progress,
        )
    except DataValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LockHeld as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (StoreUnavailable, LockLost, RetriesExhausted, DataSourceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the operator gets one line; the log has the trace
        log.debug("generator failed", exc_info=True)
        print(f"error: generator failed: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    log.info(
        "run %s done in %.1fs (load %.1fs; rows read %s; dropped %s; removed old runs: %s): %s",
        report.run_id,
        report.total_seconds,
        report.load_seconds,
        report.rows_read,
        {table: sum(reasons.values()) for table, reasons in report.dropped.items()},
        ", ".join(report.removed_runs) or "none",
        "; ".join(f"{m.handle} {m.users_covered} users fit {m.fit_seconds:.1f}s search {m.search_seconds:.1f}s write {m.items_written} items {m.write_seconds:.1f}s" for m in report.models),
    )
    report_path = args.report or settings.run_report_dir / f"{report.run_id}.json"
    try:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(report.to_json())
    except OSError as exc:  # the run is published; a summary we cannot write is only a warning
        log.warning("could not write the run summary to %s: %s", report_path, exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
