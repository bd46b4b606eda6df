"""The pointer cache shared by a server's processes: the later-started read wins, in a folder or in memory."""

from __future__ import annotations

import pytest

from recommender.store.control import Pointer
from recommender.store.pointer_cache import PointerCache

OLD = Pointer("tfidf_user_interest", "20260101T000000Z-aaaa", "p-20260101T000000Z-aaaa", 10, 1)
NEW = Pointer("tfidf_user_interest", "20260102T000000Z-bbbb", "p-20260102T000000Z-bbbb", 12, 2)


@pytest.fixture(params=["folder", "memory"])
def caches(request, tmp_path):
    """Two caches as two worker processes of one server see it (same folder), or one process."""
    if request.param == "memory":
        cache = PointerCache("p")
        return cache, cache
    return PointerCache("p", tmp_path / "pointers"), PointerCache("p", tmp_path / "pointers")


def test_a_read_that_started_later_is_seen_by_every_process(caches):
    first, second = caches
    assert first.offer("tfidf_user_interest", 10.0, OLD) == (10.0, OLD)
    assert second.load("tfidf_user_interest") == (10.0, OLD)
    assert second.offer("tfidf_user_interest", 11.0, NEW) == (11.0, NEW)
    assert first.load("tfidf_user_interest") == (11.0, NEW)


def test_a_read_that_started_earlier_never_puts_back_an_older_run(caches):
    first, second = caches
    second.offer("tfidf_user_interest", 11.0, NEW)
    # A slow read that began before the publish comes back last: the newer entry stays.
    assert first.offer("tfidf_user_interest", 10.5, OLD) == (11.0, NEW)
    assert first.load("tfidf_user_interest") == (11.0, NEW)


def test_a_later_read_wins_even_when_it_names_an_older_run(caches):
    """A deliberate rollback (an operator pointing a model back) still shows."""
    first, second = caches
    first.offer("tfidf_user_interest", 11.0, NEW)
    assert second.offer("tfidf_user_interest", 12.0, OLD) == (12.0, OLD)


def test_no_published_run_is_cached_too_and_models_are_apart(caches):
    first, second = caches
    first.offer("knn_collab_filtering_user_course_view", 5.0, None)
    assert second.load("knn_collab_filtering_user_course_view") == (5.0, None)
    assert second.load("tfidf_user_interest") is None


def test_prefixes_do_not_share_entries(tmp_path):
    PointerCache("a", tmp_path).offer("tfidf_user_interest", 1.0, OLD)
    assert PointerCache("b", tmp_path).load("tfidf_user_interest") is None


def test_a_process_that_read_the_file_sees_a_rewrite_of_the_same_size(tmp_path):
    """Each process keeps the entry it decoded while the file is unchanged: a new file of the same
    length (another process's later read of the same run) must still be noticed."""
    first, second = PointerCache("p", tmp_path), PointerCache("p", tmp_path)
    first.offer("tfidf_user_interest", 10.0, OLD)
    assert first.load("tfidf_user_interest") == (10.0, OLD)
    second.offer("tfidf_user_interest", 20.0, OLD)  # same text length as 10.0
    assert first.load("tfidf_user_interest") == (20.0, OLD)
    assert first.load("tfidf_user_interest") == second.load("tfidf_user_interest") == (20.0, OLD)
