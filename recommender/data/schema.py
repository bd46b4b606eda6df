"""The four input tables' file names and required columns, as published by the platform."""

from __future__ import annotations

LEVELS: tuple[str, ...] = ("Beginner", "Intermediate", "Advanced")

FILES: dict[str, str] = {
    "user_interests": "user_interests.csv",
    "user_course_views": "user_course_views.csv",
    "user_assessment_scores": "user_assessment_scores.csv",
    "course_tags": "course_tags.csv",
}

COLUMNS: dict[str, tuple[str, ...]] = {
    "user_interests": ("user_handle", "interest_tag", "date_followed"),
    "user_course_views": (
        "user_handle",
        "view_date",
        "course_id",
        "author_handle",
        "level",
        "view_time_seconds",
    ),
    "user_assessment_scores": (
        "user_handle",
        "assessment_tag",
        "user_assessment_date",
        "user_assessment_score",
    ),
    "course_tags": ("course_id", "course_tags"),
}
