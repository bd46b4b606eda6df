"""Load an export (``--sink export`` / ``--publish import``) into DynamoDB and publish it as a run.

``similar-users-load EXPORT_URI`` (a folder or ``s3://bucket/prefix/<run_id>``) reads the export's
manifest and parts and writes the items with the generator's batch writer into the run's table,
then flips the pointers as a generator run does (the lock, the run record, the same transaction).
Why: DynamoDB Local has no ImportTable, and a night's export is the way to serve AWS's run on a
laptop.  The items are written as exported (same run id, same attribute values).  Each model's
count must match the manifest, or nothing is published.  Exit codes as the generator's.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator

from recommender.cli.common import BAD_INPUT, FAILED, INTERRUPTED, LOCKED, OK, batch_settings, exit_codes_epilog, fail

log = logging.getLogger("similar_users_load")


class BadExport(ValueError):
    """The export's files do not agree with its manifest, or a part is not DynamoDB JSON."""


def _items(location, model: str, parts: list[str]) -> Iterator[dict[str, dict]]:
    from recommender.store.export import read_part

    for part in parts:
        try:
            for item in read_part(location.get(part)):
                if item.get("model_handle", {}).get("S") != model:
                    raise BadExport(f"{location.describe(part)}: an item of model "
                                    f"{item.get('model_handle', {}).get('S')!r} in {model}'s folder")
                yield item
        except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, BadExport):
                raise
            raise BadExport(f"{location.describe(part)}: not gzip DynamoDB JSON lines ({exc.__class__.__name__}: {exc})") from exc


def main(argv: list[str] | None = None) -> int:
    settings = batch_settings()
    if isinstance(settings, int):
        return settings
    parser = argparse.ArgumentParser(prog="similar-users-load", description=__doc__.split("\n\n")[0],
                                     epilog=exit_codes_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export_uri", metavar="EXPORT_URI", help="the export's folder or s3://bucket/prefix (holding manifest.json)")
    args = parser.parse_args(argv)

    from recommender.store.dynamo import DynamoStore, StoreUnavailable
    from recommender.store.export import DATA, ExportFailed, ExportLocation, read_manifest
    from recommender.store.publisher import LockHeld, LockLost, RunPublisher
    from recommender.store.retry import RetriesExhausted

    location = ExportLocation(args.export_uri, settings.s3_endpoint_url)
    publisher = None
    try:
        manifest = read_manifest(location)
        models = tuple(manifest["models"])
        parts = location.list(DATA)
        publisher = RunPublisher(DynamoStore.for_generator(settings), lease_seconds=settings.generator_lock_lease_seconds,
                                 keep_runs=settings.keep_runs, write_threads=settings.write_threads)
        try:
            publisher.begin(manifest["run_id"], models)
            for model in models:
                mine = [p for p in parts if p.startswith(f"{DATA}/{model}/")]
                count = publisher.write_attributes(model, _items(location, model, mine))
                expected = manifest["models"][model]["items"]
                if count != expected:
                    raise BadExport(f"{location.describe(DATA)}/{model}/: {count:,} items, the manifest counts {expected:,}")
            publisher.commit(json.dumps(manifest))
            publisher.cleanup()
        except BaseException:
            publisher.abort()
            raise
        finally:
            publisher.release_lock()
    except (BadExport, KeyError) as exc:
        return fail(BAD_INPUT, f"{args.export_uri}: manifest.json lacks {exc}" if isinstance(exc, KeyError) else str(exc))
    except LockHeld as exc:
        return fail(LOCKED, str(exc))
    except (ExportFailed, StoreUnavailable, LockLost, RetriesExhausted) as exc:
        return fail(FAILED, str(exc))
    except KeyboardInterrupt:
        return fail(INTERRUPTED, "interrupted (SIGINT); nothing was published")
    log.info("loaded run %s from %s: %s", manifest["run_id"], args.export_uri,
             ", ".join(f"{m} ({c:,} items)" for m, c in publisher.counts.items()))
    return OK


if __name__ == "__main__":
    sys.exit(main())
