"""One rule for user handles, as a JSON integer or a string: 1..2**63-1, a string written the one
canonical way (digits only, no sign, spaces or leading zeros).  The published pattern, the
validator and the endpoints all agree, case by case."""

from __future__ import annotations

import random
import re

import pytest

from recommender.api.schemas import USER_HANDLE_PATTERN, digits_at_most, parse_user_handle
from recommender.data.schema import MAX_USER_HANDLE

TOP = 2**63 - 1
CASES = [  # (value as sent, the handle it means or None for a 400)
    (42, 42),
    ("42", 42),
    (" 42", None),
    ("42 ", None),
    ("042", None),
    ("+42", None),
    ("-42", None),
    ("4_2", None),
    ("٤٢", None),  # Arabic-Indic digits: str.isdigit() says yes, the rule says no
    ("42.0", None),
    ("", None),
    (1, 1),
    ("1", 1),
    (0, None),
    ("0", None),
    ("00", None),
    (-1, None),
    (TOP, TOP),
    (str(TOP), TOP),
    (TOP + 1, None),
    (str(TOP + 1), None),
    ("9223372036854775799", 9223372036854775799),
    ("9223372036854775810", None),
    ("9300000000000000000", None),
    ("8999999999999999999", 8999999999999999999),
    ("10000000000000000000", None),  # 20 digits
    (True, None),
    (4.0, None),
    (None, None),
]


def test_the_bound_is_the_loaders():
    assert MAX_USER_HANDLE == TOP


@pytest.mark.parametrize(("value", "handle"), CASES)
def test_validator(value, handle):
    if handle is None:
        with pytest.raises(ValueError):
            parse_user_handle(value)
    else:
        assert parse_user_handle(value) == handle


@pytest.mark.parametrize(("value", "handle"), [c for c in CASES if isinstance(c[0], str)])
def test_published_pattern_accepts_exactly_the_same_strings(value, handle):
    assert bool(re.fullmatch(USER_HANDLE_PATTERN, value)) == (handle is not None)


def test_pattern_is_exact_around_any_bound():
    rng = random.Random(5)
    for limit in (1, 9, 10, 99, 100, 305, 1000, TOP, *(rng.randrange(1, 10**12) for _ in range(20))):
        pattern = re.compile(digits_at_most(limit))
        numbers = {1, 2, limit - 1, limit, limit + 1, limit * 10, *(rng.randrange(1, limit * 3 + 2) for _ in range(200))}
        for n in numbers:
            assert bool(pattern.fullmatch(str(n))) == (1 <= n <= limit), (limit, n)
        assert not pattern.fullmatch("0") and not pattern.fullmatch(f"0{limit}")


@pytest.mark.parametrize(("value", "handle"), [c for c in CASES if c[0] is not None])
def test_post_body(memory_app, value, handle):
    response = memory_app().test_client().post("/similar-users/", json={"user_handle": value})
    if handle is None:
        assert response.status_code == 400
        assert response.get_json()["message"].startswith("user_handle: must be a positive integer")
    else:  # accepted: the answer (or "nothing stored") names the same number
        assert response.status_code == 404 and str(handle) in response.get_json()["message"]


@pytest.mark.parametrize(("value", "handle"), [c for c in CASES if isinstance(c[0], str) and c[0].strip() == c[0] and c[0]])
def test_get_path(memory_app, value, handle):
    response = memory_app().test_client().get(f"/similar-users/{value}")
    assert response.status_code == (400 if handle is None else 404), response.get_json()


def test_the_known_user_as_integer_and_string(memory_app):
    client = memory_app().test_client()
    by_int = client.post("/similar-users/", json={"user_handle": 999}).get_json()
    assert client.post("/similar-users/", json={"user_handle": "999"}).get_json() == by_int
    assert client.get("/similar-users/999").get_json() == by_int
