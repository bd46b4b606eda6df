"""Load an export (``--sink export`` / ``--sink import``) into DynamoDB and publish it as a run.

``similar-users-load EXPORT_URI`` (a folder or ``s3://bucket/prefix/<run_id>``) reads the export's
manifest and parts and publishes them as the run the manifest names, through the one publish
lifecycle every generator run goes through (:mod:`recommender.publishing`): a new run id and a
new table, the lock, each model's coverage, the pointer flip, the exit codes.  This command is
only the source of the items, and it believes nothing it reads: the manifest is checked whole
before anything is touched, each item must be of its folder's model and of the manifest's run,
and each model's item count and ``lists_checksum`` (recomputed from the items as they are
written) must be the manifest's before the flip.  Why: DynamoDB Local has no ImportTable, and a
night's export is the way to serve AWS's run on a laptop.  Exit codes as the generator's.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from recommender.cli.common import batch_settings, exit_codes_epilog, run_batch

log = logging.getLogger("similar_users_load")


class BadExport(ValueError):
    """The export's files do not agree with its manifest, or a part is not DynamoDB JSON."""


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: Annotated[StrictInt, Field(ge=0)]
    lists_checksum: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{32}$")]


class Manifest(BaseModel):
    """What ``manifest.json`` must hold to be loaded (:func:`recommender.store.export.manifest` writes it)."""

    model_config = ConfigDict(extra="allow")

    run_id: StrictStr
    format: Literal["DYNAMODB_JSON"]
    compression: Literal["GZIP"]
    data: Literal["data/"]
    items: Annotated[StrictInt, Field(ge=0)]
    models: dict[StrictStr, ModelEntry]


def read_export(location: Any) -> tuple[Manifest, dict[str, list[str]]]:
    """The manifest, checked whole, and each model's parts; :class:`BadExport` naming what is wrong."""
    from pathlib import Path

    from recommender.publishing import validate_run
    from recommender.store.export import DATA, MANIFEST
    from recommender.store.export_location import ExportFailed, is_s3

    where = location.describe(MANIFEST)
    try:
        text = location.get(MANIFEST)
    except ExportFailed as exc:
        raise ExportFailed(f"{exc} (no {MANIFEST}: not an export, or an unfinished one)") from exc
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise BadExport(f"{where}: not valid JSON ({exc})") from None
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(the whole file)"
        raise BadExport(f"{where}: {field}: {first['msg']} (got {json.dumps(first.get('input'))[:80]})") from None
    validate_run(manifest.run_id, manifest.models)
    if manifest.items != sum(m.items for m in manifest.models.values()):
        raise BadExport(f"{where}: items {manifest.items:,} is not the sum of the models' items")
    parts: dict[str, list[str]] = {model: [] for model in manifest.models}
    for name in location.list(DATA):
        match = re.fullmatch(rf"{DATA}/([a-z0-9_]+)/[A-Za-z0-9_.-]+\.json(\.gz)?", name)
        if match is None or match.group(1) not in parts:
            raise BadExport(f"{location.describe(name)}: not a part of a model the manifest lists")
        if not is_s3(location.uri):  # a link out of the export is not the export's
            root = Path(location.uri).resolve()
            if not (root / name).resolve().is_relative_to(root):
                raise BadExport(f"{location.describe(name)}: links outside the export")
        parts[match.group(1)].append(name)
    return manifest, parts


class ModelSource:
    """One model's items from its parts, checked as they pass: the model, the run, the key, the lists;
    it counts them and sums their lists' checksum (:func:`recommender.search.checksum.of_items`)."""

    def __init__(self, location: Any, model: str, run_id: str, parts: list[str]):
        self.location, self.model, self.run_id, self.parts = location, model, run_id, parts
        self.sums: list[tuple[int, int]] = []
        self.count = 0

    def __iter__(self) -> Iterator[dict[str, dict]]:
        from recommender.search.checksum import of_items
        from recommender.stopping import checkpoint
        from recommender.store.export import read_part

        for part in self.parts:
            where = self.location.describe(part)
            try:
                items = list(read_part(self.location.get(part)))
                lists = [self._check(item) for item in items]
            except BadExport as exc:
                raise BadExport(f"{where}: {exc}") from None
            except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise BadExport(f"{where}: not gzip DynamoDB JSON lines ({exc.__class__.__name__}: {exc})") from None
            self.sums.append(of_items(*zip(*lists)) if lists else (0, 0))
            self.count += len(items)
            yield from items
            checkpoint("write")  # a test's stop lands here, with a part already written

    def _check(self, item: object) -> tuple[int, list[int], list[float]]:
        if not isinstance(item, dict):
            raise BadExport(f"an item is not a map of attributes: {json.dumps(item)[:80]}")

        def value(name: str, kind: str) -> Any:
            attribute = item.get(name)
            if not isinstance(attribute, dict) or not isinstance(attribute.get(kind), str):
                raise BadExport(f"an item's {name} is not a DynamoDB {kind} value: {json.dumps(item)[:120]}")
            return attribute[kind]

        if value("model_handle", "S") != self.model:
            raise BadExport(f"an item of model {value('model_handle', 'S')!r} in {self.model}'s folder")
        if value("run_id", "S") != self.run_id:
            raise BadExport(f"an item of run {value('run_id', 'S')!r}, not of the manifest's run {self.run_id}")
        user = value("user_handle", "N")
        similar, scores = json.loads(value("similar_users", "S")), json.loads(value("scores", "S"))
        if (not re.fullmatch(r"[1-9][0-9]{0,17}", user) or not isinstance(similar, list) or not isinstance(scores, list)
                or not similar or len(similar) != len(scores)
                or not all(type(s) is int and s > 0 for s in similar)
                or not all(type(s) in (int, float) for s in scores)):
            raise BadExport(f"user {user}: not a stored item's lists (similar_users and scores)")
        return int(user), similar, scores

    @property
    def lists_checksum(self) -> str:
        from recommender.search.checksum import combine

        return combine(self.sums)


def load(location: Any, settings: Any, publisher_slot: list) -> dict[str, int]:
    """Publish the export at ``location`` as its run; each model's item count."""
    from recommender.publishing import RunWrite, publish_run
    from recommender.store.dynamo import DynamoStore
    from recommender.store.publisher import RunPublisher

    manifest, parts = read_export(location)
    models = tuple(manifest.models)
    publisher = RunPublisher(DynamoStore.for_generator(settings), lease_seconds=settings.generator_lock_lease_seconds,
                             keep_runs=settings.keep_runs, write_threads=settings.write_threads)
    publisher_slot.append(publisher)

    counts: dict[str, int] = {}

    def write(run: RunWrite) -> dict[str, int]:
        for model in models:
            claimed = manifest.models[model]
            run.check_coverage(model, claimed.items)  # before its items are read: a short export is refused first
            source = ModelSource(location, model, manifest.run_id, parts[model])
            written = publisher.write_attributes(model, source)
            run.verify(model, "items read", claimed.items, source.count)
            run.verify(model, "items written", claimed.items, written)
            run.verify(model, "lists_checksum", claimed.lists_checksum, source.lists_checksum)
            counts[model] = written
        return counts

    summary = json.dumps({"loaded_from": location.uri, **manifest.model_dump()})
    done = publish_run(publisher, manifest.run_id, models, write, lambda: summary,
                       min_coverage_ratio=settings.min_coverage_ratio)
    if done.signal is not None:
        from recommender.stopping import StoppedAfterPublish

        raise StoppedAfterPublish(counts, done.signal)
    return counts


def main(argv: list[str] | None = None) -> int:
    settings = batch_settings()
    if isinstance(settings, int):
        return settings
    parser = argparse.ArgumentParser(prog="similar-users-load", description=__doc__.split("\n\n")[0],
                                     epilog=exit_codes_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export_uri", metavar="EXPORT_URI", help="the export's folder or s3://bucket/prefix (holding manifest.json)")
    args = parser.parse_args(argv)

    from recommender.store.export_location import ExportLocation

    location = ExportLocation(args.export_uri, settings.s3_endpoint_url)
    slot: list = []  # the publisher, once there is one: whether the flip went through
    outcome = run_batch("load", lambda: load(location, settings, slot), lambda: bool(slot) and slot[0].published,
                        bad_input=(BadExport,))
    if outcome.result is not None:
        log.info("loaded run from %s: %s", args.export_uri, ", ".join(f"{m} ({c:,} items)" for m, c in outcome.result.items()))
    return outcome.exit()


if __name__ == "__main__":
    sys.exit(main())
