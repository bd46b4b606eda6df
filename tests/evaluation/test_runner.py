from __future__ import annotations

import json

import numpy as np
import pytest

from recommender.cli import evaluate as cli
from recommender.evaluation import tuning
from recommender.evaluation.runner import all_users, evaluate, load_truth
from recommender.evaluation.task_split import EvalConfig, TaskSplit
from recommender.evaluation.split import TASKS
from recommender.models.ensemble import AFFINITY_MODEL

FAST_MODELS = ("tfidf_user_interest", "knn_collab_filtering_user_course_view")


@pytest.fixture(scope="module")
def fast_results(small_tables, small_dataset):
    return evaluate(small_tables, load_truth(small_dataset), EvalConfig(models=FAST_MODELS))


def test_every_system_gets_every_figure(fast_results):
    systems = set(FAST_MODELS) | {"random_users", "most_active_users", "item_pop"}
    assert set(fast_results["tasks"]) == {"courses", "interests", "assessments"}
    for name, task in fast_results["tasks"].items():
        references = {"item_pop", "als_direct_items"} if name == "courses" else {"item_pop"}
        assert set(task["metrics"]) == systems | references
        ranking = {"recall_at_10", "ndcg_at_10", "hit_rate_at_10", "catalogue_coverage"}
        expected = ranking | {"user_coverage"} | ({"level_accuracy"} if name == "courses" else set())
        for system, values in task["metrics"].items():
            assert set(values) == (ranking if system in references else expected)
            assert all(0.0 <= v <= 1.0 for v in values.values())
            errors = task["standard_errors"][system]
            assert set(errors) <= set(values) and all(0.0 < e < 0.1 for e in errors.values())
        assert set(task["beats_most_active_users"]) == set(FAST_MODELS)
        paired = task["versus_most_active_users"]
        assert set(paired) == set(FAST_MODELS) and all(p["difference_error"] > 0 for p in paired.values())
        for system, p in paired.items():  # the paired mean difference is the difference of the means
            gap = task["metrics"][system]["ndcg_at_10"] - task["metrics"]["most_active_users"]["ndcg_at_10"]
            assert abs(p["difference"] - gap) < 2e-6
    assert fast_results["agreement"]["fit"] == "full data"
    assert len(fast_results["agreement"]["pairs"]) == 1


def test_random_users_are_worse_than_tfidf_on_planted_communities(fast_results):
    planted = fast_results["planted"]["metrics"]
    tfidf = planted["tfidf_user_interest"]["community_precision_at_10"]
    random = planted["random_users"]["community_precision_at_10"]
    chance = fast_results["planted"]["chance"]["community_precision_at_10"]
    assert random < chance + 0.05 < tfidf - 0.3
    # and the interest model recommends held-out tags better than random users do
    interests = fast_results["tasks"]["interests"]["metrics"]
    assert interests["tfidf_user_interest"]["ndcg_at_10"] > interests["random_users"]["ndcg_at_10"]


def test_same_seed_same_figures(fast_results, small_tables, small_dataset):
    again = evaluate(small_tables, load_truth(small_dataset), EvalConfig(models=FAST_MODELS))
    assert json.dumps(again) == json.dumps(fast_results)
    other = evaluate(small_tables, None, EvalConfig(models=FAST_MODELS[:1], seed=8))
    assert other["planted"] is None
    assert other["tasks"]["courses"]["metrics"] != fast_results["tasks"]["courses"]["metrics"]


def test_validation_split_comes_from_training_only(small_tables):
    users = all_users(small_tables)
    task = TASKS["courses"]
    test = TaskSplit(small_tables, task, users, EvalConfig())
    validation = TaskSplit(test.train_tables, task, users, EvalConfig(), seed_offset=1)
    def pairs(frame):
        return set(zip(frame["user_handle"], frame[task.item_col]))

    validation_items = pairs(validation.heldout_pairs)
    assert validation_items
    assert validation_items <= pairs(getattr(test.train_tables, task.table))
    assert not validation_items & pairs(test.heldout_pairs)
    assert not validation_items & pairs(getattr(validation.train_tables, task.table))


def test_clear_margin_grows_with_the_grid():
    assert tuning.clear_z(1) == pytest.approx(1.96, abs=0.01)
    assert tuning.clear_z(6) == pytest.approx(2.64, abs=0.01)


def test_tuning_picks_the_best_validation_figure(small_tables, small_dataset):
    grids = {"knn_collab_filtering_user_course_view": [{}, {"weighting": "raw"}, {"weighting": "log"}]}
    out = tuning.tune(small_tables, load_truth(small_dataset), EvalConfig(models=FAST_MODELS), grids)
    model = out["models"]["knn_collab_filtering_user_course_view"]
    values = [entry["validation"]["ndcg_at_10"] for entry in model["grid"]]
    best = model["before_after"]["best"]
    assert best["validation"]["ndcg_at_10"] == max(values)
    assert model["before_after"]["default"]["params"] == {}
    assert set(best["test"]) >= {"ndcg_at_10", "community_precision_at_10"}
    assert isinstance(model["recommendation"], str)


#: What a split holds of its held-out part: tuning must choose without reading any of it on the test split.
HELD_OUT = {"heldout", "relevant", "heldout_pairs", "eval_rows", "eval_users", "seen", "score", "score_items", "baselines"}


class SealedSplit(TaskSplit):
    """A real split that raises once sealed if its held-out part is read (attributes or scoring)."""

    def __getattribute__(self, name):
        if name in HELD_OUT and object.__getattribute__(self, "__dict__").get("sealed"):
            raise AssertionError(f"the test split's held-out part was read while tuning ({name})")
        return object.__getattribute__(self, name)


def sealed_test_split(tables, task, users, config, *, seed_offset=0):
    """The tuning's split factory with the test split (seed offset 0) sealed after it is built."""
    if seed_offset:
        return TaskSplit(tables, task, users, config, seed_offset=seed_offset)
    split = SealedSplit(tables, task, users, config, seed_offset=seed_offset)
    split.sealed = True
    return split


def test_the_fusion_and_the_models_are_chosen_without_reading_the_test_split(small_tables):
    grids = {"knn_collab_filtering_user_course_view": [{}, {"weighting": "raw"}],
             "ensemble_user_similarity": [{}, {"activity_power": 0.0}, {"affinity": 0.0}, {"sharpen": 2.0},
                                          {"few_views": 3, "few_views_weights": {"tfidf_user_interest": 1.0}},
                                          {"component_params": {AFFINITY_MODEL: {"factors": 16}}}]}
    config = EvalConfig(models=("knn_collab_filtering_user_course_view", "ensemble_user_similarity"))
    chosen = tuning.select(small_tables, None, config, grids, split_factory=sealed_test_split)
    assert set(chosen) == set(grids)
    for handle, c in chosen.items():
        values = [e["validation"][c["selection"]] for e in c["entries"]]
        assert values[c["best_i"]] == max(values) and all(e["validation_errors"] for e in c["entries"])
    # the seal is real: the reporting phase scores the test split, and is refused
    with pytest.raises(AssertionError, match="held-out part was read"):
        tuning.tune(small_tables, None, config, grids, split_factory=sealed_test_split)
    # and unsealed, the full tuning reports the very choices made without the test split
    out = tuning.tune(small_tables, None, config, grids)
    for handle, c in chosen.items():
        assert out["models"][handle]["before_after"]["best"]["params"] == c["grid"][c["best_i"]]


@pytest.mark.slow
def test_command_line_writes_json_markdown_and_charts(small_dataset, tmp_path, capsys):
    out = tmp_path / "results.json"
    images = tmp_path / "img"
    code = cli.main(["--data-dir", str(small_dataset), "--out", str(out), "--images-dir", str(images), "--no-progress"])
    assert code == 0
    results = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert "| `dnn_collab_filtering_user_course_level` |" in printed
    assert out.with_suffix(".md").read_text().strip() == printed.strip()
    assert (images / "eval_ndcg_at_10.png").stat().st_size > 1000
    assert (images / "eval_skill_precision_at_10.png").is_file()
    planted = results["planted"]["metrics"]
    # The DNN is the skill-level model, the two others find the topic.
    dnn = planted["dnn_collab_filtering_user_course_level"]
    assert dnn["skill_precision_at_10"] > planted["tfidf_user_interest"]["skill_precision_at_10"] + 0.1
    assert dnn["skill_precision_at_10"] > planted["random_users"]["skill_precision_at_10"] + 0.1


def test_bad_data_dir_exits_2(tmp_path, capsys):
    assert cli.main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "r.json"), "--no-progress"]) == 2
    assert "user_interests.csv: file not found" in capsys.readouterr().err


def test_item_pop_recommends_the_most_popular_unseen_items():
    from scipy import sparse

    from recommender.evaluation.references import first_unseen

    ranked = np.array([4, 2, 0, 1, 3])  # item 4 most popular
    seen = sparse.csr_matrix(np.array([[0, 0, 0, 0, 1], [1, 0, 1, 0, 1], [0, 0, 0, 0, 0]]))
    np.testing.assert_array_equal(first_unseen(ranked, seen, 2), [[2, 0], [1, 3], [4, 2]])
    np.testing.assert_array_equal(first_unseen(ranked[:3], seen, 3)[1], [-1, -1, -1])
