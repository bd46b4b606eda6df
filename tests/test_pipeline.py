"""The generator's batch job keeps the ensemble's components' deeper lists and stores only the top N."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from recommender.models.registry import create_model
from recommender.pipeline import run
from recommender.store.items import StoredItem

TFIDF, ALS, ENSEMBLE = "tfidf_user_interest", "als_collab_filtering_user_course_view", "ensemble_user_similarity"
WEIGHTS = {TFIDF: 1.0, ALS: 1.0}


class CollectingSink:
    """A real sink (the generator's protocol) that keeps what is written, per model."""

    def __init__(self) -> None:
        self.items: dict[str, list[StoredItem]] = {}
        self.published = False

    def begin(self, run_id: str, models: tuple[str, ...]) -> None: ...
    def previous_coverage(self) -> dict[str, int]: return {}

    def write(self, model_handle: str, items: Iterable[StoredItem], total: int | None = None, progress: bool = False) -> int:
        self.items[model_handle] = list(items)
        return len(self.items[model_handle])

    def prepare(self, summary: str = "") -> None: ...
    def commit(self, summary: str = "") -> None: self.published = True
    def abort(self) -> None: ...
    def cleanup(self) -> list[str]: return []
    def release_lock(self) -> None: ...


def test_components_are_searched_deeper_for_the_ensemble_but_store_their_top_n(small_dataset, small_tables):
    sink = CollectingSink()
    run(small_dataset, sink, models=(TFIDF, ALS, ENSEMBLE), top_n=10, progress=False,
        model_params={ENSEMBLE: {"weights": WEIGHTS, "depth": 50}})
    assert sink.published
    stored = {h: {i.user_handle: i.similar_users for i in items} for h, items in sink.items.items()}
    assert all(len(ids) <= 10 for lists in stored.values() for ids in lists.values())
    # Each component stores exactly its own top 10, as if it had been searched to 10.
    tfidf = create_model(TFIDF).fit(small_tables).similar_users(10)
    assert {u: ids for u, ids, _ in tfidf.rows()} == stored[TFIDF]
    # The ensemble equals the standalone fit (which searches its components to depth 50 itself) ...
    alone = create_model(ENSEMBLE, weights=WEIGHTS, depth=50).fit(small_tables).similar_users(10)
    assert {u: ids for u, ids, _ in alone.rows()} == stored[ENSEMBLE]
    # ... and uses the depth: some of its neighbours are in neither component's stored top 10.
    beyond = [v for u, ids in stored[ENSEMBLE].items() for v in ids
              if v not in stored[TFIDF].get(u, []) and v not in stored[ALS].get(u, [])]
    assert beyond
    assert np.isfinite([n.score for i in sink.items[ENSEMBLE] for n in i.neighbours]).all()
