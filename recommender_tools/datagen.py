"""Synthetic stand-in for the four Pluralsight tables, with a known hidden structure.

Why this exists: only two of the four published tables ship with the project, and none of them
says which users *are* similar.  This generator writes all four tables in the published shape
(``user_interests``, ``user_course_views``, ``user_assessment_scores``, ``course_tags``) plus a
``ground_truth.csv`` that the real data never has: every user's hidden *community* (topic) and
*skill* level.  Similarity models can then be scored (e.g. precision@10 of "neighbour is in the
same community") instead of being eyeballed, and the batch job can be load-tested at 100k-1M
users.

Catalogue
    By default the course catalogue is the real published ``course_tags.csv`` shipped in
    ``data/pluralsight/`` (``--catalogue DIR`` for another one): its 5,830 tagged courses and
    996 tags (after the loader's lower-casing), copied byte for byte into the output, so the
    synthetic users follow, watch and are assessed on the real vocabulary (``c#``, ``.net``,
    ``3d-modeling``).  ``--catalogue builtin`` keeps the invented catalogue (themed slugs such as
    ``maya-rigging``), byte-identical to earlier versions: the data ``benchmarks/RESULTS.md`` used.

Hidden structure
    * ``--communities`` topics (default 20).  Real catalogue: groups of tags found on the same
      courses (k-means over the tags' course vectors, see :func:`_real_catalogue`), so
      ``3d-rigging`` and ``3d-animation`` land together.  Built-in catalogue: a vocabulary of
      hand-written themes (3D, networking, .NET, ...) cut into contiguous blocks, ~20% of which
      also belong to a second community (overlap).  A course belongs to one community (real:
      the community of most of its tags; built-in: tagged mostly with its tags).
    * Each user has one community, a "secondary" community (a weak second interest) and a skill
      level (Beginner / Intermediate / Advanced, 45/35/20%).
    * Interests: ~50% of a user's draws come from their community's tags, ~14% from the
      secondary community and ~36% from the global popularity distribution (noise concentrated
      on popular tags, as real noise is).
    * Views: ~75% of viewed courses come from the user's community, the rest from global course
      popularity; either way the course level is biased towards the user's skill.  View time is
      ~3x longer for in-community courses.
    * Assessments: ~80% from the community's assessment tags; scores rise with skill and drop a
      little outside the community.
    The noise is deliberate: a cosine model on interest tags finds mostly same-community neighbours
    but not only those (binary-cosine precision@10 ~0.76 at 2k users on the real catalogue, ~0.75
    on the built-in one, against a chance level of ``1/communities``).

Sizes
    Row counts scale linearly with ``--users`` (at 10,000 users they match the published shape:
    ~297k interest rows with ~6% exact duplicates, ~249k view rows for ~88% of users, ~6.6k
    assessment rows for ~31% of users).  The *catalogue* is fixed-size whatever ``--users`` is:
    the real one's tags (~75% of which users can follow: 747 of 996, published 748) and courses,
    or the built-in 1,000 tags (750 followable) and 5,942 courses; 1,412 authors, 54 assessment
    tags and 212 view dates, as in the published data.  A real platform's catalogue does not grow with
    its audience, and a fixed catalogue keeps the item side of every model comparable across
    scales.  The catalogue depends only on ``seed`` and ``communities``, not on ``users``.

Reproducibility and scale
    Everything is drawn from ``np.random.default_rng(seed)`` (children spawned for the catalogue
    and for each fixed-size chunk of users), and written with ``DataFrame.to_csv``, so the same
    arguments give the same bytes.  Users are generated and appended to the CSVs in chunks of
    :data:`CHUNK_USERS`, so memory is bounded by a chunk (1M users ~ 30M interest rows is fine);
    all per-row work is vectorised numpy, the only Python loops are per chunk, per community or
    over the fixed-size catalogue.

CLI::

    python -m recommender_tools.datagen --users 10000 --seed 7 --out data/ [--communities 20]
        [--catalogue data/pluralsight | builtin]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.preprocessing import normalize

from recommender.data.loader import load_table
from recommender.data.schema import COLUMNS, FILES, LEVELS

try:  # the progress bar is a nicety, never a requirement
    from tqdm import tqdm
except ImportError:  # pragma: no cover - tqdm is a declared dependency
    tqdm = None

log = logging.getLogger(__name__)

GROUND_TRUTH_FILE = "ground_truth.csv"
# Default catalogue: the real published course_tags.csv (data/pluralsight/), shipped inside the
# package too (catalogue/ links to it in a checkout, a wheel holds a copy): the installed
# similar-users-datagen needs it outside a checkout.
DEFAULT_CATALOGUE = Path(__file__).parent / "catalogue"
BUILTIN_CATALOGUE = "builtin"  # the invented themed catalogue (the data benchmarks/RESULTS.md used)
GROUND_TRUTH_COLUMNS: tuple[str, ...] = ("user_handle", "community", "skill")

# Users per chunk.  Part of the output's identity: every chunk has its own spawned generator, so
# changing this changes the bytes written for a given seed.  Do not make it a CLI option.
CHUNK_USERS = 25_000
MAX_COMMUNITIES = 200

# ---- fixed-size catalogue (published shape) -------------------------------------------------
N_TAGS = 1_000  # course-tag vocabulary (published course_tags: 998 tags + the empty one)
N_INTEREST_TAGS = 750  # tags users can follow (published user_interests: 748 distinct)
INTEREST_TAG_SHARE = N_INTEREST_TAGS / N_TAGS  # the same share of a real catalogue's tags
TAG_EMBEDDING_DIMS = 30  # SVD components of the real tags' course vectors, for clustering
N_COURSES = 5_942
N_AUTHORS = 1_412
N_ASSESSMENT_TAGS = 54
EMPTY_TAG_ROWS = 112  # course_tags rows with an empty tag, a quirk of the real export
COURSE_LEVEL_SHARE = (0.42, 0.38, 0.20)
USER_SKILL_SHARE = (0.45, 0.35, 0.20)
# How much a user of skill s (row) likes a course of level l (column): mostly their own level.
LEVEL_AFFINITY = np.array([[1.0, 0.30, 0.08], [0.30, 1.0, 0.30], [0.10, 0.35, 1.0]])

# ---- per-user behaviour (calibrated so 10k users give the published row counts) ------------
INTEREST_PRIMARY = 0.50
INTEREST_SECONDARY = 0.14  # the rest (~36%) is global-popularity noise
INTEREST_DRAWS_LOG_MEAN = 3.17  # lognormal draws per user, before de-duplicating (user, tag)
INTEREST_DRAWS_LOG_SD = 1.05
SHARED_TAG_SHARE = 0.20  # tags that also belong to a second community (built-in catalogue)
# Real catalogue: no random overlap.  Its tag groups are uneven (7-258 tags) and already blur at
# their borders; with the built-in 20% overlap, TF-IDF neighbours at 600 users / 6 communities
# were only 0.48 above chance (built-in: 0.50); without it 0.52, at the published row counts.
REAL_SHARED_TAG_SHARE = 0.0
GLOBAL_TAG_SKEW = 1.3  # noise draws ~ popularity ** skew: a few tags are followed by many users
COURSE_POP_SD = 0.8
INTEREST_DUP_RATE = 0.0652  # share of rows written twice (published: 18,209 of 279,317)
VIEW_USER_SHARE = 0.876  # published: 8,760 of 10,000 users have views
VIEW_IN_COMMUNITY = 0.75
VIEW_COURSES_LOG_MEAN = 1.97  # lognormal distinct courses per viewing user
VIEW_COURSES_LOG_SD = 0.95
VIEW_SESSION_P = 0.36  # sessions per (user, course) ~ geometric(p): several dates per course
VIEW_GAP_P = 0.35  # days between sessions ~ geometric(p)
VIEW_TIME_MEDIAN_IN = 1500.0  # seconds, course of the user's community
VIEW_TIME_MEDIAN_OUT = 500.0
ASSESS_USER_SHARE = 0.311  # published: 3,114 of 10,000 users
ASSESS_IN_COMMUNITY = 0.80
ASSESS_SINGLE = 0.56  # assessed users who take exactly one assessment; the rest take
ASSESS_MORE_P = 0.40  # 2 + geometric(p) - 1 more, at most 15 in all
SCORE_BY_SKILL = (117.0, 162.0, 207.0)
SCORE_OUT_OF_COMMUNITY = -20.0
SCORE_SD = 42.0

# ---- date ranges ------------------------------------------------------------------------------
INTEREST_START = np.datetime64("2013-06-01T00:00:00", "s")
INTEREST_END = np.datetime64("2017-11-28T23:59:59", "s")
VIEW_START = np.datetime64("2017-05-01", "D")
VIEW_DAYS = 212  # 2017-05-01 .. 2017-11-28
ASSESS_START = np.datetime64("2016-07-13T00:00:00", "s")
ASSESS_END = np.datetime64("2017-11-28T23:59:59", "s")

# ---- vocabulary ---------------------------------------------------------------------------
# theme -> (subjects, facets, nouns).  Tags are subjects, facets and "subject-facet" pairs;
# course ids add nouns and level words.  Hand-written so the output reads like the real catalogue
# without copying it.
THEMES: tuple[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = tuple(
    (t["theme"], tuple(t["subjects"]), tuple(t["facets"]), tuple(t["nouns"]))
    for t in json.loads((Path(__file__).parent / "datagen_themes.json").read_text())
)  # data, not code: kept in datagen_themes.json
LEVEL_WORDS: tuple[tuple[str, ...], ...] = (
    ("fundamentals", "introduction", "getting-started", "first-look", "essentials", "basics",
     "for-beginners", "quick-start"),
    ("in-practice", "building", "working-with", "techniques", "workflows", "implementing",
     "tips-tricks", "play-by-play"),
    ("advanced", "mastering", "deep-dive", "expert", "optimizing", "best-practices",
     "architecting", "under-the-hood"),
)
ASSESSMENT_SUFFIXES = ("-core-skills", "-fundamentals", "-for-developers", "-administration")


# ---- sampling -------------------------------------------------------------------------------
class _GroupSampler:
    """Draw item indices from one of several categorical distributions, fully vectorised.

    Why: users of different communities (and skills) sample from different distributions; a
    per-group ``rng.choice`` would need a Python loop per row or per group.  Stacking every
    group's CDF, shifted by its group number, into one sorted array lets a single
    ``searchsorted`` serve all draws at once: a draw ``u`` for group ``g`` looks up ``g + u``.
    """

    def __init__(self, weights: np.ndarray):
        weights = np.asarray(weights, dtype=np.float64)
        if weights.ndim != 2 or (weights < 0).any():
            raise ValueError("weights must be a non-negative (groups, items) matrix")
        totals = weights.sum(axis=1, keepdims=True)
        if (totals <= 0).any():
            raise ValueError("every group needs at least one item with positive weight")
        cdf = np.cumsum(weights, axis=1) / totals
        cdf[:, -1] = 1.0
        self.n_groups, self.n_items = weights.shape
        self._flat = (cdf + np.arange(self.n_groups)[:, None]).ravel()

    def draw(self, rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
        groups = np.asarray(groups, dtype=np.int64)
        u = rng.random(groups.size)
        pos = np.searchsorted(self._flat, groups + u, side="right")
        return np.clip(pos - groups * self.n_items, 0, self.n_items - 1)


def _random_seconds(rng: np.random.Generator, n: int, start: np.datetime64,
                    end: np.datetime64) -> np.ndarray:
    lo, hi = start.astype(np.int64), end.astype(np.int64)
    return rng.integers(lo, hi + 1, size=n, dtype=np.int64)


# ---- catalogue ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Catalogue:
    """Everything that does not depend on the number of users."""

    communities: int
    community_share: np.ndarray  # (C,) share of users in each community
    tag_names: np.ndarray  # (tags,) str
    tag_community: np.ndarray  # (tags,) home community
    interest_tags: np.ndarray  # indices into tag_names of the tags users can follow
    interest_sampler: _GroupSampler  # groups 0..C-1 = community, C = global noise
    course_ids: np.ndarray  # (courses,) str
    course_community: np.ndarray
    course_level: np.ndarray  # 0/1/2 index into LEVELS
    course_author: np.ndarray  # author_handle
    course_sampler: _GroupSampler  # group = community * 3 + skill; community C = global
    course_tags: pd.DataFrame | Path  # the course_tags table, or the real file copied byte for byte
    assessment_tags: np.ndarray  # (N_ASSESSMENT_TAGS,) str
    assessment_community: np.ndarray
    assessment_difficulty: np.ndarray  # score offset per assessment tag
    assessment_sampler: _GroupSampler  # groups 0..C-1 = community, C = global


def _vocabulary(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pick N_TAGS tag names with their theme, ordered by theme (so blocks are coherent)."""
    names: list[str] = []
    themes: list[int] = []
    bare: list[bool] = []
    seen: set[str] = set()
    for t, (_, subjects, facets, _) in enumerate(THEMES):  # fixed-size: a few hundred strings
        candidates = [(s, True) for s in subjects] + [(f, True) for f in facets]
        candidates += [(f"{s}-{f}", False) for s in subjects for f in facets if s != f]
        for name, is_bare in candidates:
            if name not in seen:
                seen.add(name)
                names.append(name)
                themes.append(t)
                bare.append(is_bare)
    names_a, themes_a, bare_a = np.array(names), np.array(themes), np.array(bare)
    if names_a.size < N_TAGS:  # pragma: no cover - guarded by the theme lists above
        raise RuntimeError("theme lists too short for the tag vocabulary")
    combos = np.flatnonzero(~bare_a)
    keep = np.concatenate([np.flatnonzero(bare_a),
                           rng.choice(combos, N_TAGS - int(bare_a.sum()), replace=False)])
    # Order by theme, randomly within a theme.
    keep = keep[np.lexsort((rng.random(keep.size), themes_a[keep]))]
    return names_a[keep], themes_a[keep]


def _course_ids(rng: np.random.Generator, primary_tag: np.ndarray, theme: np.ndarray,
                level: np.ndarray) -> np.ndarray:
    """Slug-like ids: level word + primary tag + theme noun + optional "-NNNN", made unique."""
    n = primary_tag.size
    parts: list[np.ndarray] = []
    lead = np.empty(n, dtype=object)
    tail = np.empty(n, dtype=object)
    noun = np.empty(n, dtype=object)
    for lv, words in enumerate(LEVEL_WORDS):  # loop per level, vectorised inside
        idx = np.flatnonzero(level == lv)
        lead[idx] = np.array(words, dtype=object)[rng.integers(0, len(words), idx.size)]
        tail[idx] = np.array(words, dtype=object)[rng.integers(0, len(words), idx.size)]
    for t, (_, _, _, nouns) in enumerate(THEMES):  # loop per theme
        idx = np.flatnonzero(theme == t)
        noun[idx] = np.array(nouns, dtype=object)[rng.integers(0, len(nouns), idx.size)]
    shape = rng.random((4, n))
    empty = np.full(n, "", dtype=object)
    parts.append(np.where(shape[0] < 0.45, lead, empty))
    parts.append(primary_tag.astype(object))
    parts.append(np.where(shape[1] < 0.45, noun, empty))
    parts.append(np.where((shape[0] >= 0.45) & (shape[2] < 0.5), tail, empty))
    numbers = rng.permutation(np.arange(100, 100 + n)).astype(str).astype(object)
    parts.append(np.where(shape[3] < 0.37, numbers, empty))
    ids = pd.Series(parts[0])
    for part in parts[1:]:
        ids = ids + "-" + pd.Series(part)
    ids = ids.str.replace(r"-{2,}", "-", regex=True).str.strip("-")
    dup = ids.groupby(ids).cumcount()
    ids = ids.where(dup == 0, ids + "-v" + (dup + 1).astype(str))
    if ids.duplicated().any():  # pragma: no cover - "-vN" suffixes cannot collide in practice
        raise RuntimeError("course ids are not unique")
    return ids.to_numpy(dtype=object)


def build_catalogue(rng: np.random.Generator, communities: int,
                    source: str | Path = BUILTIN_CATALOGUE) -> Catalogue:
    """Tags, courses, authors and assessment tags, with each item's home community.

    Why separate: the catalogue is the fixed "item side" of the data; it is drawn from its own
    generator so that it is identical for every ``--users`` with the same seed.  ``source`` is a
    folder holding a real ``course_tags.csv`` (its course ids and tags are used) or
    :data:`BUILTIN_CATALOGUE` (invented themed vocabulary).
    """
    if str(source) == BUILTIN_CATALOGUE:
        return _builtin_catalogue(rng, communities)
    return _real_catalogue(rng, communities, Path(source))


def _tag_side(rng: np.random.Generator, tag_community: np.ndarray, tag_pop: np.ndarray, C: int,
              shared_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Each community's tag weights (its own tags; ``shared_share`` of the tags also in a random
    second community) and the followable tags (75% of each community's tags, so every community
    keeps some)."""
    n_tags = tag_pop.size
    tag_weights = np.zeros((C, n_tags))
    tag_weights[tag_community, np.arange(n_tags)] = tag_pop
    if C > 1 and shared_share > 0:
        shared = np.flatnonzero(rng.random(n_tags) < shared_share)
        second = (tag_community[shared] + rng.integers(1, C, shared.size)) % C
        tag_weights[second, shared] += 0.5 * tag_pop[shared]
    block_sizes = np.bincount(tag_community, minlength=C)
    quota = np.diff(np.rint(np.r_[0, np.cumsum(block_sizes)] * INTEREST_TAG_SHARE)).astype(int)
    eligible: list[np.ndarray] = []
    for c in range(C):  # loop per community
        block = np.flatnonzero(tag_community == c)
        eligible.append(rng.choice(block, max(1, quota[c]), replace=False))
    return tag_weights, np.sort(np.concatenate(eligible))


def _builtin_catalogue(rng: np.random.Generator, communities: int) -> Catalogue:
    """The invented catalogue: themed tag vocabulary cut into contiguous community blocks."""
    C = communities
    community_share = rng.dirichlet(np.full(C, 4.0))

    # Tags: theme-ordered vocabulary cut into C blocks; some tags also join a second community.
    tag_names, tag_theme = _vocabulary(rng)
    tag_community = np.repeat(np.arange(C), [len(b) for b in np.array_split(np.arange(N_TAGS), C)])
    tag_pop = rng.lognormal(0.0, 1.0, N_TAGS)
    tag_weights, interest_tags = _tag_side(rng, tag_community, tag_pop, C, SHARED_TAG_SHARE)

    # Authors: a home community and a productivity each (a few authors make many courses).
    author_handles = np.sort(rng.choice(np.arange(1, 8_001), N_AUTHORS, replace=False))
    author_community = np.concatenate([np.arange(C), rng.choice(C, N_AUTHORS - C, p=community_share)])
    author_pop = rng.lognormal(0.0, 1.0, N_AUTHORS)
    author_weights = np.zeros((C, N_AUTHORS))
    author_weights[author_community, np.arange(N_AUTHORS)] = author_pop

    # Courses: home community, level, popularity, author, tags.
    # Every author has at least one course (their first, in their community); the remaining
    # courses go to communities by a random share and to authors by productivity.
    course_share = rng.dirichlet(np.full(C, 8.0))
    rest_community = rng.choice(C, N_COURSES - N_AUTHORS, p=course_share)
    course_community = np.concatenate([author_community, rest_community])
    course_author = np.concatenate([
        author_handles, author_handles[_GroupSampler(author_weights).draw(rng, rest_community)]])
    shuffle = rng.permutation(N_COURSES)
    course_community, course_author = course_community[shuffle], course_author[shuffle]
    course_level = rng.choice(3, N_COURSES, p=COURSE_LEVEL_SHARE)
    course_pop = rng.lognormal(0.0, COURSE_POP_SD, N_COURSES)

    n_tags = rng.choice(np.arange(1, 16), N_COURSES, p=_course_tag_count_pmf())
    row_course = np.repeat(np.arange(N_COURSES), n_tags)
    first = np.r_[True, row_course[1:] != row_course[:-1]]
    home = course_community[row_course]
    noise = (~first) & (rng.random(row_course.size) < 0.15)
    tag_groups = np.where(noise, C, home)
    tag_sampler = _GroupSampler(np.vstack([tag_weights, np.ones((1, N_TAGS))]))
    row_tag = tag_sampler.draw(rng, tag_groups)
    primary = row_tag[first]  # the first tag of each course names it
    course_ids = _course_ids(rng, tag_names[primary], tag_theme[primary], course_level)
    pairs = pd.DataFrame({"course": row_course, "tag": row_tag}).drop_duplicates()
    tag_text = tag_names[pairs["tag"].to_numpy()].astype(object)
    tag_text[rng.choice(tag_text.size, min(EMPTY_TAG_ROWS, tag_text.size), replace=False)] = ""
    course_tags = pd.DataFrame({"course_id": course_ids[pairs["course"].to_numpy()],
                                "course_tags": tag_text})

    return _catalogue(rng, community_share, tag_names, tag_community, tag_weights, tag_pop,
                      interest_tags, course_ids, course_community, course_level, course_author,
                      course_pop, course_tags)


def _catalogue(rng: np.random.Generator, community_share: np.ndarray, tag_names: np.ndarray,
               tag_community: np.ndarray, tag_weights: np.ndarray, tag_pop: np.ndarray,
               interest_tags: np.ndarray, course_ids: np.ndarray, course_community: np.ndarray,
               course_level: np.ndarray, course_author: np.ndarray, course_pop: np.ndarray,
               course_tags: pd.DataFrame | Path) -> Catalogue:
    """The samplers and assessment tags, the same for the built-in and the real catalogue."""
    C = community_share.size
    interest_sampler = _GroupSampler(np.vstack([tag_weights[:, interest_tags],
                                                tag_pop[interest_tags][None, :] ** GLOBAL_TAG_SKEW]))
    # Course sampler: group (community c, skill s) weights = popularity x level affinity,
    # restricted to community c; the extra community C is the global (noise) distribution.
    course_weights = np.zeros(((C + 1) * 3, course_ids.size))
    for c in range(C + 1):  # loop per community
        in_c = course_pop * ((course_community == c) if c < C else 1.0)
        for s in range(3):
            course_weights[c * 3 + s] = in_c * LEVEL_AFFINITY[s, course_level]
    course_sampler = _GroupSampler(course_weights)

    # Assessment tags: named after popular tags; the first C go one per community.
    a_comm = np.concatenate([np.arange(min(C, N_ASSESSMENT_TAGS)),
                             rng.choice(C, max(0, N_ASSESSMENT_TAGS - C), p=community_share)])
    a_names: list[str] = []
    used: set[int] = set()
    for c in a_comm:  # fixed 54 iterations: named after the community's most popular tag left
        block = np.flatnonzero(tag_community == c)
        block = block[np.argsort(-tag_pop[block], kind="stable")]
        free = [int(t) for t in block if int(t) not in used] or [int(t) for t in block]
        t = free[0]
        used.add(t)
        suffix = ""
        if rng.random() < 0.35:
            suffix = ASSESSMENT_SUFFIXES[rng.integers(len(ASSESSMENT_SUFFIXES))]
        name = str(tag_names[t]) + suffix
        while name in a_names:
            name += "-2"
        a_names.append(name)
    a_pop = 1.0 / (rng.permutation(N_ASSESSMENT_TAGS) + 1.0) ** 1.2
    a_weights = np.zeros((C + 1, N_ASSESSMENT_TAGS))
    a_weights[a_comm, np.arange(N_ASSESSMENT_TAGS)] = a_pop
    a_weights[C] = a_pop
    empty = a_weights[:C].sum(axis=1) == 0
    a_weights[:C][empty] = a_pop  # communities without assessments (C > 54) take any
    return Catalogue(
        communities=C, community_share=community_share, tag_names=tag_names, tag_community=tag_community,
        interest_tags=interest_tags, interest_sampler=interest_sampler, course_ids=course_ids,
        course_community=course_community, course_level=course_level, course_author=course_author,
        course_sampler=course_sampler, course_tags=course_tags,
        assessment_tags=np.array(a_names, dtype=object),
        assessment_community=a_comm,
        assessment_difficulty=rng.normal(0.0, 10.0, N_ASSESSMENT_TAGS),
        assessment_sampler=_GroupSampler(a_weights),
    )


def _real_catalogue(rng: np.random.Generator, communities: int, source: Path) -> Catalogue:
    """The catalogue of a real ``course_tags.csv``: its course ids and tags, communities found in it.

    Why: synthetic users then follow, watch and are assessed on the real catalogue's vocabulary
    (``c#``, ``3d-modeling``, ``aws``...).  The table is read with the production loader (so its
    quirks are handled as in a real run) and written out byte for byte.  Communities are groups
    of tags that occur on the same courses: k-means (seeded) over the tags' course vectors
    (TF-IDF, reduced to :data:`TAG_EMBEDDING_DIMS` by truncated SVD, L2-normalised), which gives
    groups of comparable size (19 to 83 tags at 20 communities); clustering courses instead
    gives one group holding most tags.  A course belongs to the community of most of its tags.
    The real table has no levels, authors or popularity: those are drawn as in the built-in one;
    a tag's popularity is the square root of its number of courses.  Tags are not given a random
    second community (:data:`REAL_SHARED_TAG_SHARE`).
    """
    frame, _dropped, _rows = load_table(source, "course_tags")  # courses with only empty tags drop out
    course_ids, course = np.unique(frame["course_id"].to_numpy(dtype=object), return_inverse=True)
    tag_names, tag = np.unique(frame["course_tags"].to_numpy(dtype=object), return_inverse=True)
    n_courses, n_tags = course_ids.size, tag_names.size
    C = communities
    if n_tags <= max(C, TAG_EMBEDDING_DIMS):
        raise ValueError(f"{source / FILES['course_tags']}: {n_tags} distinct tags are too few for "
                         f"{C} communities")
    incidence = sparse.csr_matrix((np.ones(tag.size), (course, tag)), shape=(n_courses, n_tags))
    incidence.data[:] = 1.0  # a course carries a tag or not
    vectors = TfidfTransformer().fit_transform(incidence).T.tocsr()  # one row per tag
    seeds = rng.integers(2**31 - 1, size=2)
    embedding = TruncatedSVD(TAG_EMBEDDING_DIMS, random_state=int(seeds[0])).fit_transform(vectors)
    tag_community = KMeans(n_clusters=C, n_init=3, random_state=int(seeds[1])).fit_predict(
        normalize(embedding)).astype(np.int64)
    per_community = (incidence @ sparse.csr_matrix(
        (np.ones(n_tags), (np.arange(n_tags), tag_community)), shape=(n_tags, C))).toarray()
    course_community = per_community.argmax(axis=1)
    community_share = rng.dirichlet(np.full(C, 4.0))
    tag_pop = np.sqrt(np.asarray(incidence.sum(axis=0)).ravel())
    tag_weights, interest_tags = _tag_side(rng, tag_community, tag_pop, C, REAL_SHARED_TAG_SHARE)

    # Authors: each writes at least one course (every community has one); the rest of the
    # courses go to an author of their community by productivity.
    n_authors = min(N_AUTHORS, n_courses)
    author_handles = np.sort(rng.choice(np.arange(1, 8_001), n_authors, replace=False))
    order = rng.permutation(n_courses)
    firsts = order[np.unique(course_community[order], return_index=True)[1]]
    firsts = np.concatenate([firsts, order[~np.isin(order, firsts)][: n_authors - firsts.size]])
    author_community = course_community[firsts]
    author_weights = np.zeros((C, n_authors))
    author_weights[author_community, np.arange(n_authors)] = rng.lognormal(0.0, 1.0, n_authors)
    course_author = np.zeros(n_courses, dtype=np.int64)
    course_author[firsts] = author_handles
    rest = np.setdiff1d(np.arange(n_courses), firsts)
    course_author[rest] = author_handles[_GroupSampler(author_weights).draw(rng, course_community[rest])]
    course_level = rng.choice(3, n_courses, p=COURSE_LEVEL_SHARE)
    course_pop = rng.lognormal(0.0, COURSE_POP_SD, n_courses)

    return _catalogue(rng, community_share, tag_names, tag_community, tag_weights, tag_pop,
                      interest_tags, course_ids, course_community, course_level, course_author,
                      course_pop, source / FILES["course_tags"])


def _course_tag_count_pmf() -> np.ndarray:
    """Tags per course, 1..15: about half the courses have one tag, a handful have 10+."""
    k = np.arange(15)
    pmf = np.exp(-0.72 * k) + 0.0004
    return pmf / pmf.sum()


# ---- users ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Users:
    """Hidden attributes of one chunk of users."""

    handles: np.ndarray
    community: np.ndarray
    secondary: np.ndarray
    skill: np.ndarray
    activity: np.ndarray  # latent N(0, 1) shared by all tables: busy users are busy everywhere


def _draw_users(rng: np.random.Generator, first: int, count: int, cat: Catalogue) -> Users:
    C = cat.communities
    community = rng.choice(C, count, p=cat.community_share)
    secondary = (community + rng.integers(1, C, count)) % C if C > 1 else community.copy()
    return Users(
        handles=np.arange(first, first + count, dtype=np.int64),
        community=community,
        secondary=secondary,
        skill=rng.choice(3, count, p=USER_SKILL_SHARE),
        activity=rng.standard_normal(count),
    )


def _correlated(rng: np.random.Generator, activity: np.ndarray, rho: float = 0.6) -> np.ndarray:
    return rho * activity + np.sqrt(1.0 - rho * rho) * rng.standard_normal(activity.size)


def _interests(rng: np.random.Generator, users: Users, cat: Catalogue) -> pd.DataFrame:
    C = cat.communities
    z = _correlated(rng, users.activity)
    draws = np.clip(np.rint(np.exp(INTEREST_DRAWS_LOG_MEAN + INTEREST_DRAWS_LOG_SD * z)), 1, 2_000)
    draws = draws.astype(np.int64)
    who = np.repeat(np.arange(users.handles.size), draws)
    r = rng.random(who.size)
    groups = np.where(r < INTEREST_PRIMARY, users.community[who],
                      np.where(r < INTEREST_PRIMARY + INTEREST_SECONDARY, users.secondary[who], C))
    tag = cat.interest_sampler.draw(rng, groups)
    T = cat.interest_tags.size
    key = np.unique(who * T + tag)  # one row per (user, tag) ...
    who, tag = key // T, key % T
    seconds = _random_seconds(rng, key.size, INTEREST_START, INTEREST_END)
    dup = np.flatnonzero(rng.random(key.size) < INTEREST_DUP_RATE)  # ... plus exact duplicates
    rows = np.concatenate([np.arange(key.size), dup])
    rows = rows[np.lexsort((seconds[rows], who[rows]))]
    return pd.DataFrame({
        "user_handle": users.handles[who[rows]],
        "interest_tag": pd.Categorical.from_codes(
            tag[rows], categories=cat.tag_names[cat.interest_tags]),
        "date_followed": seconds[rows].astype("datetime64[s]"),
    })


def _views(rng: np.random.Generator, users: Users, cat: Catalogue) -> pd.DataFrame:
    C = cat.communities
    viewers = np.flatnonzero(rng.random(users.handles.size) < VIEW_USER_SHARE)
    z = _correlated(rng, users.activity[viewers])
    n_courses = np.clip(np.rint(np.exp(VIEW_COURSES_LOG_MEAN + VIEW_COURSES_LOG_SD * z)), 1, 1_000)
    who = np.repeat(viewers, n_courses.astype(np.int64))
    in_comm = rng.random(who.size) < VIEW_IN_COMMUNITY
    groups = np.where(in_comm, users.community[who], C) * 3 + users.skill[who]
    course = cat.course_sampler.draw(rng, groups)
    N = cat.course_ids.size
    key = np.unique(who * N + course)  # distinct (user, course) pairs
    who, course = key // N, key % N
    # Several sessions per pair on distinct, increasing dates inside the 212-day window.
    sessions = rng.geometric(VIEW_SESSION_P, key.size)
    pair = np.repeat(np.arange(key.size), sessions)
    starts = np.r_[0, np.cumsum(sessions)[:-1]]
    gap = rng.geometric(VIEW_GAP_P, pair.size)
    gap[starts] = 0
    csum = np.cumsum(gap)
    day = rng.integers(0, VIEW_DAYS, key.size)[pair] + csum - csum[starts][pair]
    keep = day < VIEW_DAYS
    pair, day = pair[keep], day[keep]
    own = cat.course_community[course[pair]] == users.community[who[pair]]
    median = np.where(own, VIEW_TIME_MEDIAN_IN, VIEW_TIME_MEDIAN_OUT)
    seconds = np.maximum(1, np.rint(median * rng.lognormal(0.0, 0.9, pair.size))).astype(np.int64)
    order = np.lexsort((course[pair], day, who[pair]))
    pair, day, seconds = pair[order], day[order], seconds[order]
    c = course[pair]
    return pd.DataFrame({
        "user_handle": users.handles[who[pair]],
        "view_date": (VIEW_START + day).astype("datetime64[s]"),
        "course_id": pd.Categorical.from_codes(c, categories=cat.course_ids),
        "author_handle": cat.course_author[c],
        "level": pd.Categorical.from_codes(cat.course_level[c], categories=list(LEVELS)),
        "view_time_seconds": seconds,
    })


def _assessments(rng: np.random.Generator, users: Users, cat: Catalogue) -> pd.DataFrame:
    C = cat.communities
    takers = np.flatnonzero(rng.random(users.handles.size) < ASSESS_USER_SHARE)
    k = np.arange(1, 16)
    pmf = np.where(k == 1, ASSESS_SINGLE,
                   (1 - ASSESS_SINGLE) * ASSESS_MORE_P * (1 - ASSESS_MORE_P) ** np.maximum(k - 2, 0))
    count = rng.choice(k, takers.size, p=pmf / pmf.sum())
    who = np.repeat(takers, count)
    groups = np.where(rng.random(who.size) < ASSESS_IN_COMMUNITY, users.community[who], C)
    tag = cat.assessment_sampler.draw(rng, groups)
    seconds = _random_seconds(rng, who.size, ASSESS_START, ASSESS_END)
    own = cat.assessment_community[tag] == users.community[who]
    mean = (np.asarray(SCORE_BY_SKILL)[users.skill[who]] + np.where(own, 0.0, SCORE_OUT_OF_COMMUNITY)
            + cat.assessment_difficulty[tag])
    score = np.clip(np.rint(rng.normal(mean, SCORE_SD)), 0, 300).astype(np.int64)
    order = np.lexsort((seconds, who))
    return pd.DataFrame({
        "user_handle": users.handles[who[order]],
        "assessment_tag": pd.Categorical.from_codes(tag[order], categories=cat.assessment_tags),
        "user_assessment_date": seconds[order].astype("datetime64[s]"),
        "user_assessment_score": score[order],
    })


def _ground_truth(users: Users) -> pd.DataFrame:
    return pd.DataFrame({
        "user_handle": users.handles,
        "community": users.community,
        "skill": pd.Categorical.from_codes(users.skill, categories=list(LEVELS)),
    })


# ---- writing ------------------------------------------------------------------------------
_DATE_FORMATS: dict[str, str | None] = {
    "user_interests": "%Y-%m-%d %H:%M:%S",
    "user_course_views": "%Y-%m-%d",
    "user_assessment_scores": "%Y-%m-%d %H:%M:%S",
    "course_tags": None,
    "ground_truth": None,
}


def _write(frame: pd.DataFrame, fh: IO[str], name: str) -> None:
    # Explicit formats: pandas would otherwise drop the time part of a chunk that happens to hold
    # only midnights, and "\n" keeps the bytes identical on every platform.
    frame.to_csv(fh, index=False, header=False, lineterminator="\n",
                 date_format=_DATE_FORMATS[name])


def generate(out_dir: str | Path, users: int, seed: int = 7, communities: int = 20,
             catalogue: str | Path = DEFAULT_CATALOGUE) -> dict[str, Path]:
    """Write the four tables and ``ground_truth.csv`` for ``users`` users into ``out_dir``.

    ``catalogue`` is a folder with a real ``course_tags.csv`` (default: the published one in
    ``data/pluralsight/``) or ``"builtin"``.  Returns the written paths keyed by table name
    ("user_interests", "user_course_views", "user_assessment_scores", "course_tags",
    "ground_truth").  Same arguments, same bytes.
    """
    if users < 1:
        raise ValueError("users must be at least 1")
    if not 1 <= communities <= MAX_COMMUNITIES:
        raise ValueError(f"communities must be between 1 and {MAX_COMMUNITIES}")
    out = Path(out_dir)
    if str(catalogue) != BUILTIN_CATALOGUE and (out / FILES["course_tags"]).resolve() == (
            Path(catalogue) / FILES["course_tags"]).resolve():
        raise ValueError(f"{out}: the output folder is the catalogue's own folder")
    root = np.random.default_rng(seed)
    cat_rng, users_rng = root.spawn(2)
    cat = build_catalogue(cat_rng, communities, catalogue)
    out.mkdir(parents=True, exist_ok=True)
    log.info("catalogue %s: %d tags (%d followable), %d courses, %d authors, %d assessment tags, "
             "%d communities", catalogue, cat.tag_names.size, cat.interest_tags.size,
             cat.course_ids.size, np.unique(cat.course_author).size, cat.assessment_tags.size,
             communities)

    columns: dict[str, tuple[str, ...]] = {**COLUMNS, "ground_truth": GROUND_TRUTH_COLUMNS}
    paths: dict[str, Path] = {name: out / FILES[name] for name in COLUMNS}
    paths["ground_truth"] = out / GROUND_TRUTH_FILE
    rows = dict.fromkeys(paths, 0)
    handles: dict[str, IO[str]] = {}
    try:
        for name, path in paths.items():
            fh = open(path, "w", encoding="utf-8", newline="")
            handles[name] = fh
            fh.write(",".join(columns[name]) + "\n")
        if isinstance(cat.course_tags, Path):  # the real table, byte for byte
            handles.pop("course_tags").close()
            shutil.copyfile(cat.course_tags, paths["course_tags"])
            rows["course_tags"] = cat.course_tags.read_bytes().count(b"\n") - 1
        else:
            _write(cat.course_tags, handles["course_tags"], "course_tags")
            rows["course_tags"] = len(cat.course_tags)

        n_chunks = -(-users // CHUNK_USERS)
        chunk_rngs = users_rng.spawn(n_chunks)
        chunks: Any = range(n_chunks)
        if tqdm is not None:
            chunks = tqdm(chunks, desc="datagen", unit="chunk", disable=None)
        for k in chunks:
            rng = chunk_rngs[k]
            first = 1 + k * CHUNK_USERS
            block = _draw_users(rng, first, min(CHUNK_USERS, users - k * CHUNK_USERS), cat)
            for name, frame in (("ground_truth", _ground_truth(block)),
                                ("user_interests", _interests(rng, block, cat)),
                                ("user_course_views", _views(rng, block, cat)),
                                ("user_assessment_scores", _assessments(rng, block, cat))):
                _write(frame, handles[name], name)
                rows[name] += len(frame)
    finally:
        for fh in handles.values():
            fh.close()
    for name, path in paths.items():
        log.info("wrote %s: %d rows", path, rows[name])
    return paths


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: ``python -m recommender_tools.datagen --users N --seed S --out DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m recommender_tools.datagen",
        description="Write synthetic Pluralsight-shaped tables with hidden communities "
                    "(plus ground_truth.csv).",
    )
    parser.add_argument("--users", type=int, default=10_000, help="number of users (default 10000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--out", type=Path, default=Path("data"),
                        help="output directory (default data/)")
    parser.add_argument("--communities", type=int, default=20,
                        help=f"hidden communities, 1..{MAX_COMMUNITIES} (default 20)")
    parser.add_argument("--catalogue", default=str(DEFAULT_CATALOGUE),
                        help="folder with the course_tags.csv whose courses and tags the users use "
                             f"(default: the published one, data/pluralsight/), or '{BUILTIN_CATALOGUE}' "
                             "for the invented catalogue")
    args = parser.parse_args(argv)
    if args.users < 1:
        parser.error("--users must be at least 1")
    if not 1 <= args.communities <= MAX_COMMUNITIES:
        parser.error(f"--communities must be between 1 and {MAX_COMMUNITIES}")
    if args.seed < 0:
        parser.error("--seed must be non-negative")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        generate(args.out, users=args.users, seed=args.seed, communities=args.communities,
                 catalogue=args.catalogue)
    except ValueError as exc:  # includes the loader's DataValidationError: one line, file named
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
