"""The generator's batch job keeps the ensemble's components' deeper lists and stores only the top N."""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np
import pytest

from recommender.data.loader import load_tables
from recommender.models.registry import create_model
from recommender.pipeline import run
from recommender.search.options import SearchOptions
from recommender.store.items import StoredItem
from recommender.topk import similar_users

TFIDF, ALS, ENSEMBLE = "tfidf_user_interest", "als_collab_filtering_user_course_view", "ensemble_user_similarity"
WEIGHTS = {TFIDF: 1.0, ALS: 1.0}


class CollectingSink:
    """A real sink (the generator's protocol) that keeps what is written, per model."""

    def __init__(self) -> None:
        self.items: dict[str, list[StoredItem]] = {}
        self.published = False

    def begin(self, run_id: str, models: tuple[str, ...]) -> dict[str, int]: return {}
    def target(self) -> None: return None

    def write(self, model_handle: str, items: Iterable[StoredItem], total: int | None = None, progress: bool = False) -> int:
        self.items[model_handle] = list(items)
        return len(self.items[model_handle])

    def commit(self, counts: dict[str, int], summary: str = "", at_commit_point=lambda: None) -> None:
        at_commit_point()
        self.published = True

    def abort(self) -> None: ...
    def finish(self, clean_up: bool = True) -> list[str]: return []


def test_components_are_searched_deeper_for_the_ensemble_but_store_their_top_n(small_dataset, small_tables):
    sink = CollectingSink()
    run(small_dataset, sink, models=(TFIDF, ALS, ENSEMBLE), top_n=10, progress=False,
        model_params={ENSEMBLE: {"weights": WEIGHTS, "depth": 50}})
    assert sink.published
    stored = {h: {i.user_handle: i.similar_users for i in items} for h, items in sink.items.items()}
    assert all(len(ids) <= 10 for lists in stored.values() for ids in lists.values())
    # Each component stores exactly its own top 10, as if it had been searched to 10.
    tfidf = similar_users(create_model(TFIDF).fit(small_tables), 10)
    assert {u: ids for u, ids, _ in tfidf.rows()} == stored[TFIDF]
    # The ensemble equals the standalone fit (which searches its components to depth 50 itself) ...
    alone = similar_users(create_model(ENSEMBLE, weights=WEIGHTS, depth=50).fit(small_tables), 10)
    assert {u: ids for u, ids, _ in alone.rows()} == stored[ENSEMBLE]
    # ... and uses the depth: some of its neighbours are in neither component's stored top 10.
    beyond = [v for u, ids in stored[ENSEMBLE].items() for v in ids
              if v not in stored[TFIDF].get(u, []) and v not in stored[ALS].get(u, [])]
    assert beyond
    assert np.isfinite([n.score for i in sink.items[ENSEMBLE] for n in i.neighbours]).all()


def test_a_fusing_model_runs_after_its_components_whatever_order_it_is_asked_in(small_dataset):
    sink = CollectingSink()
    report = run(small_dataset, sink, models=(ENSEMBLE, TFIDF, ALS), top_n=5, progress=False,
                 model_params={ENSEMBLE: {"weights": WEIGHTS}})
    assert [m.handle for m in report.models] == [TFIDF, ALS, ENSEMBLE]
    assert list(sink.items) == [TFIDF, ALS, ENSEMBLE]
    assert report.models[-1].fit_seconds < 0.5 * report.models[0].fit_seconds + 0.5  # fused, not refitted


# Every way a model's users reach the sink: sparse postings (interests), dense GEMM (ALS factors),
# and the fused lists (the ensemble: fused and explained on the driver, written by partitions).
PATH_MODELS = (TFIDF, ALS, ENSEMBLE)


def _executors():
    from recommender.executor import LocalExecutor

    yield "processes", LocalExecutor(processes=2, min_users=0)
    try:
        from recommender.executor import DaskExecutor
        from recommender.search.dask_engine import DaskEngine
    except ImportError:  # the dask extra is not installed
        return
    yield "dask", DaskExecutor(DaskEngine(workers=2))


def _unstamped(text: str, report) -> str:
    return text.replace(report.run_id, "RUN").replace(report.generated_at, "AT")


def test_every_executor_writes_the_one_process_dry_run_and_export(small_dataset, tmp_path):
    from recommender.store.export import read_part
    from recommender.store.export_location import ExportLocation
    from recommender.store.export_sink import ExportSink
    from recommender.store.jsonl import JsonLinesSink

    def dry_run(path, executor=None) -> str:
        report = run(small_dataset, JsonLinesSink(path), PATH_MODELS, 10, progress=False, search=SearchOptions(block_mb=1), executor=executor)
        return _unstamped(path.read_text(), report)

    def export(folder, executor=None):
        sink = ExportSink(ExportLocation(str(folder)))
        report = run(small_dataset, sink, PATH_MODELS, 10, progress=False, search=SearchOptions(block_mb=1), executor=executor)
        parts = sink.location.list("data")
        items = sorted(_unstamped(json.dumps(item, sort_keys=True), report)
                       for part in parts for item in read_part(sink.location.get(part)))
        return items, json.loads(sink.location.get("manifest.json"))["models"], parts, report

    expected_lines = dry_run(tmp_path / "one.jsonl")  # 600 users: one partition in this process
    expected, expected_models, expected_parts, one = export(tmp_path / "one")
    assert expected_lines.count("\n") > 1500 and len(expected) == expected_lines.count("\n")
    assert len(expected_parts) == len(PATH_MODELS) and all(m.partitions == 0 for m in one.models)
    for name, executor in _executors():
        try:
            assert dry_run(tmp_path / f"{name}.jsonl", executor) == expected_lines, name
            items, models, parts, report = export(tmp_path / name, executor)
        finally:
            executor.close()
        assert items == expected, name
        assert models == expected_models, name  # counts and lists checksums
        assert all(m.partitions >= (1 if m.handle == ENSEMBLE else 2) for m in report.models), (name, [(m.handle, m.partitions) for m in report.models])
        assert len(parts) > len(expected_parts), name  # each partition its own part files, written where it ran


class RefusingTarget:
    """A partition target whose writes fail (a full disk, a lost bucket): picklable, raises where it runs."""

    def write(self, items) -> int:
        raise OSError("no space left on device")


def test_a_partition_that_fails_in_a_worker_process_fails_the_run_unpublished(small_dataset, tmp_path):
    from recommender.executor import LocalExecutor
    from recommender.store.export_location import ExportLocation
    from recommender.store.export_sink import ExportSink

    class Refusing(ExportSink):
        def target(self):
            return RefusingTarget()

    sink = Refusing(ExportLocation(str(tmp_path / "export")))
    executor = LocalExecutor(processes=2, min_users=0)
    with pytest.raises(OSError, match="no space left"):
        run(small_dataset, sink, (TFIDF,), 10, progress=False, executor=executor)
    assert not sink.published and not (tmp_path / "export" / "manifest.json").exists()
    assert executor._pool is None  # the workers were stopped
    executor.close()


def test_each_table_is_released_after_the_last_model_that_fits_from_it(small_tables):
    from recommender.pipeline import _release_tables

    views, interests = "user_course_views", "user_interests"
    models = (TFIDF, ALS, ENSEMBLE)
    instances = {h: create_model(h, **({"weights": WEIGHTS} if h == ENSEMBLE else {})) for h in models}
    # After the TF-IDF fit: ALS still fits from the views; the ensemble fuses lists and fits nothing.
    after_tfidf = _release_tables(small_tables, [ALS, ENSEMBLE], instances, models)
    assert len(after_tfidf.user_interests) == 0 and len(after_tfidf.user_course_views) == len(small_tables.user_course_views)
    assert list(after_tfidf.user_interests.columns) == list(small_tables.user_interests.columns)
    assert len(small_tables.user_interests) > 0  # the caller's tables are not changed
    assert all(len(getattr(_release_tables(after_tfidf, [ENSEMBLE], instances, models), t)) == 0 for t in (views, interests))
    # An ensemble run alone fits its components itself: nothing it reads is released before it.
    alone = {ENSEMBLE: instances[ENSEMBLE]}
    kept = _release_tables(small_tables, [ENSEMBLE], alone, (ENSEMBLE,))
    assert len(kept.user_interests) == len(small_tables.user_interests) and len(kept.user_course_views) > 0


def test_kept_lists_hold_int32_handles_only_when_every_handle_fits():
    from recommender.pipeline import compact
    from recommender.topk import Neighbours

    small = Neighbours(np.array([1, 2]), np.array([[2, -1], [1, -1]]), np.array([[0.5, np.nan], [0.5, np.nan]], np.float32))
    assert compact(small).similar.dtype == np.int32 and (compact(small).similar == small.similar).all()
    big = Neighbours(np.array([1, 2**40]), np.array([[2**40, -1], [1, -1]]), small.scores)
    assert compact(big) is big


def test_auto_publishes_at_the_recall_floor_where_the_set_effort_misses_it_and_the_report_says_how(small_dataset):
    from recommender.search.recall import RecallTooLow

    # One of 64 clusters walked per user misses neighbours on these 600 users: --search ann refuses to publish ...
    poor = SearchOptions(method="ann", sparse_probes=1, recall_sample=600)
    with pytest.raises(RecallTooLow):
        run(small_dataset, CollectingSink(), models=(TFIDF,), progress=False, search=poor)
    # ... auto (its switch-over size set low) raises the effort or searches exactly, and publishes.
    sink = CollectingSink()
    auto = SearchOptions(method="auto", auto_exact_max_users=10, sparse_probes=1, recall_sample=600)
    report = run(small_dataset, sink, models=(TFIDF,), progress=False, search=auto)
    entry = report.models[0]
    assert sink.published and entry.recall_at_10 >= 0.95
    pilot = entry.search_plan["pilot"]
    assert pilot[1] < 0.95 and entry.search_plan["index"] == "clusters"
    if entry.search == "ann":
        assert entry.recall_at_10 == pilot[entry.search_plan["probes"]]
    else:
        assert entry.search == "exact" and entry.search_plan["fallback"] == "exact" and max(pilot.values()) < 0.95
    assert json.loads(report.to_json())["models"][0]["search_plan"]["index"] == "clusters"
    # Published lists at that recall: the exact ones wherever the search was exact.
    exact = similar_users(create_model(TFIDF).fit(load_tables(small_dataset)), 10)
    stored = {i.user_handle: i.similar_users for i in sink.items[TFIDF]}
    found = [len(set(ids) & set(stored.get(u, []))) / len(ids) for u, ids, _ in exact.rows()]
    assert np.mean(found) >= 0.95


def test_auto_publishes_at_the_floor_where_the_index_alone_misses_it(small_dataset, small_tables):
    """The interests' cluster index probing 1 of 32 clusters misses the recall floor: asked for
    explicitly (``ann``) the run is refused; under ``auto`` the pilot raises the probes (or the search
    is exact) and the run publishes lists whose recall@10 over *every* user is at the floor."""
    from recommender.search.recall import RecallTooLow, recall_at_k

    cheap = {"auto_exact_max_users": 100, "recall_sample": 200, "sparse_clusters": 32, "sparse_probes": 1}
    with pytest.raises(RecallTooLow):
        run(small_dataset, CollectingSink(), models=(TFIDF,), top_n=10, progress=False,
            search=SearchOptions(method="ann", **cheap))
    sink = CollectingSink()
    report = run(small_dataset, sink, models=(TFIDF,), top_n=10, progress=False, search=SearchOptions(method="auto", **cheap))
    entry = report.models[0]
    pilot = entry.search_plan["pilot"]
    assert sink.published and entry.recall_at_10 >= 0.95
    assert pilot[1] < 0.95, "the index alone, at the configured probes, misses the floor"
    exact = similar_users(create_model(TFIDF).fit(small_tables), 10)  # the oracle: every user, exactly
    stored = {i.user_handle: i for i in sink.items[TFIDF]}
    similar = np.full(exact.similar.shape, -1)
    scores = np.full(exact.scores.shape, np.nan, dtype=np.float32)
    for row, user in enumerate(exact.users):
        if int(user) in stored:
            found = stored[int(user)]
            similar[row, :len(found.similar_users)] = found.similar_users
            scores[row, :len(found.scores)] = found.scores
    assert recall_at_k(similar, scores, exact.similar, exact.scores) >= 0.95
