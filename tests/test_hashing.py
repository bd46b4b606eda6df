"""The package's splitmix64 against SplitMix64's finaliser written out on Python integers."""

from __future__ import annotations

import numpy as np

from recommender.hashing import splitmix64

_MASK = (1 << 64) - 1


def _reference(value: int) -> int:
    value ^= value >> 30
    value = (value * 0xBF58476D1CE4E5B9) & _MASK
    value ^= value >> 27
    value = (value * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def test_every_element_is_mixed_as_the_reference_mixes_it():
    values = np.concatenate([np.array([0, 1, _MASK, 1 << 63, 0x9E3779B97F4A7C15], dtype=np.uint64),
                             np.random.default_rng(3).integers(0, _MASK, 1_000, dtype=np.uint64, endpoint=True)])
    original = values.copy()
    mixed = splitmix64(values)
    assert mixed.tolist() == [_reference(int(v)) for v in original]
    np.testing.assert_array_equal(values, original)  # a new array unless asked otherwise
    assert splitmix64(values, in_place=True) is values and values.tolist() == mixed.tolist()
