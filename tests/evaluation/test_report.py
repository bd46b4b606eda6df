from recommender.evaluation.report import describe_params


def test_grid_rows_name_weights_and_per_model_parameters_readably():
    assert describe_params({}) == "defaults"
    assert describe_params({"depth": 25, "sharpen": 2.0}) == "depth=25, sharpen=2.0"
    weights = {"tfidf_user_interest": 0.5, "knn_collab_filtering_user_course_view": 0.0,
               "knn_collab_filtering_user_assessment_score": 0.25}
    assert describe_params({"few_views": 3, "few_views_weights": weights}) == (
        "few_views=3, few_views_weights={tfidf_interest 0.5, knn_assessment_score 0.25}")
    assert describe_params({"component_params": {"als_collab_filtering_user_course_view": {"factors": 64}}}) == (
        "component_params={als_course_view factors=64}")
