"""Assignment: the same arm for a user in every process and after restarts, in the weights' shares."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

from recommender.experiments import definitions
from recommender.experiments.assignment import assign, bucket
from tests.conftest import ROOT
from tests.experiments.files import INTEREST, LEVEL, VIEWS, experiment_toml

ARMS = (("a", INTEREST, 1), ("b", VIEWS, 2), ("c", LEVEL, 1))
CHILD = """
import json, sys
from recommender.experiments import definitions
from recommender.experiments.assignment import assign
e = definitions.parse(sys.stdin.read(), "stdin").experiment[0]
print(json.dumps([assign(e, u).name for u in range(1, 3001)]))
"""


def experiment(salt="salt-1"):
    return definitions.parse(experiment_toml("three", salt=salt, arms=ARMS), "test").experiment[0]


def test_split_is_within_two_points_of_the_weights_over_100000_users():
    e = experiment()
    counts = Counter(assign(e, user).name for user in range(1, 100_001))
    shares = {name: counts[name] / 100_000 for name in "abc"}
    assert abs(shares["a"] - 0.25) < 0.02 and abs(shares["b"] - 0.5) < 0.02 and abs(shares["c"] - 0.25) < 0.02, shares


def test_same_arm_in_other_processes_with_other_hash_seeds():
    expected = [assign(experiment(), u).name for u in range(1, 3001)]
    for seed in ("0", "1", "random"):  # each a fresh interpreter, as a restarted or other worker is
        child = subprocess.run([sys.executable, "-c", CHILD], input=experiment_toml("three", salt="salt-1", arms=ARMS), cwd=ROOT,
                               capture_output=True, text=True, timeout=120,
                               env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)})
        assert child.returncode == 0, child.stderr
        assert json.loads(child.stdout) == expected


def test_salt_reshuffles_users_and_buckets_are_uniform():
    a = [assign(experiment("salt-1"), u).name for u in range(1, 5001)]
    b = [assign(experiment("salt-2"), u).name for u in range(1, 5001)]
    moved = sum(x != y for x, y in zip(a, b)) / len(a)
    assert 0.5 < moved < 0.75  # independent draws with shares 1/4, 1/2, 1/4 differ 62.5% of the time
    values = [bucket("s", u) for u in range(20_000)]
    assert 0 <= min(values) and max(values) < 1
    deciles = Counter(int(v * 10) for v in values)
    assert all(abs(deciles[d] - 2000) < 200 for d in range(10))
