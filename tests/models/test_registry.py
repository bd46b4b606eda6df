"""The registry's declarations hold for every registered model (derived from MODELS: a new line is checked)."""

from __future__ import annotations

import pytest

from recommender.models.registry import MODEL_HANDLES, MODELS, get_spec, run_order


@pytest.mark.parametrize("spec", MODELS, ids=[spec.handle for spec in MODELS])
def test_a_model_fuses_others_exactly_when_the_registry_says_so(spec):
    cls = spec.load()
    assert spec.fuses == hasattr(cls, "combine"), f"{spec.handle}: fuses={spec.fuses} but combine is {'' if hasattr(cls, 'combine') else 'not '}defined"
    if spec.fuses:
        components = spec.create().components
        assert components, spec.handle
        assert all(not get_spec(h).fuses for h in components), "a fuser fuses models that have lists of their own"
        assert set(components) <= set(MODEL_HANDLES)


def test_a_run_computes_the_fusing_models_last_and_keeps_the_order_of_the_others():
    handles = list(reversed(MODEL_HANDLES))
    order = run_order(handles)
    fusing = [h for h in handles if get_spec(h).fuses]
    assert fusing, "the registry has a fusing model (the ensemble)"
    assert order == [h for h in handles if not get_spec(h).fuses] + fusing
    assert run_order(MODEL_HANDLES) == [h for h in MODEL_HANDLES if not get_spec(h).fuses] + fusing
