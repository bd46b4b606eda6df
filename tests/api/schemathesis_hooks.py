"""schemathesis hooks for tests/api/test_schemathesis.py (loaded through ``SCHEMATHESIS_HOOKS``).

JSON Schema counts ``999.0`` as an integer (a number with no fraction), so schemathesis sends
it as a *valid* ``user_handle`` or ``k``.  This API deliberately refuses floats there (the
original contract: ``999.0`` and ``1.5`` are both 400), and no JSON Schema keyword can say
"integer, but not written with a fraction".  Such generated values are dropped; every other
generated request is sent and checked.
"""

from __future__ import annotations

from typing import Any

import schemathesis

FIELDS = ("user_handle", "k")


def _integral_float(value: Any) -> bool:
    return isinstance(value, float) and value.is_integer()


@schemathesis.hook
def filter_body(context, body: Any) -> bool:
    return not (isinstance(body, dict) and any(_integral_float(body.get(name)) for name in FIELDS))


@schemathesis.hook
def filter_query(context, query: Any) -> bool:
    return not (isinstance(query, dict) and any(_integral_float(query.get(name)) for name in FIELDS))
