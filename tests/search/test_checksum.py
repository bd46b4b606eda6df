"""The lists checksum: the same for any partitioning of the users, different for any changed list."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from recommender.search.checksum import checksum, combine, of_items, parts
from recommender.search.exact import exact_top_k


def _answer():
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(500, 16)).astype(np.float32)
    return exact_top_k(vectors, np.arange(1, 501) * 7, 10)


def _block(n, rows: slice):
    return replace(n, users=n.users[rows], similar=n.similar[rows], scores=n.scores[rows])


def test_blocks_add_up_to_the_whole_in_any_order():
    n = _answer()
    whole = checksum(n)
    blocks = [parts(_block(n, slice(a, b))) for a, b in ((0, 13), (13, 250), (250, 251), (251, 500))]
    assert combine(blocks) == whole
    assert combine(blocks[::-1]) == whole
    assert len(whole) == 32


def test_any_changed_neighbour_score_or_user_changes_it():
    n = _answer()
    whole = checksum(n)
    similar = n.similar.copy()
    similar[42, [3, 4]] = similar[42, [4, 3]]  # two neighbours swapped
    scores = n.scores.copy()
    scores[7, 0] += np.float32(1e-6)  # one stored unit of one score
    users = n.users.copy()
    users[0] += 1
    changed = [replace(n, similar=similar), replace(n, scores=scores), replace(n, users=users),
               _block(n, slice(1, 500))]
    assert len({whole, *(checksum(c) for c in changed)}) == 1 + len(changed)


def test_it_counts_what_is_stored_so_the_stored_items_give_it_again():
    """Scores as their stored decimals, users without neighbours and padding left out: the
    checksum of the items (an export's) equals the lists'."""
    n = _answer()
    similar, scores = n.similar.copy(), n.scores.copy()
    similar[::5, 6:], scores[::5, 6:] = -1, np.nan  # shorter lists
    similar[3], scores[3] = -1, np.nan  # a user without neighbours: no item
    lists = replace(n, similar=similar, scores=scores)
    rows = list(lists.rows())  # (user, neighbours, rounded scores) as items store them
    assert len(rows) == 499
    assert combine([of_items(*zip(*rows))]) == checksum(lists)
    assert checksum(replace(lists, scores=scores + np.float32(1e-9))) == checksum(lists)  # below the stored precision
