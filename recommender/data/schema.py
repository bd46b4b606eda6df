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

# Accepted values (docs/data.md).  A value outside them is a broken export: the run
# stops with exit 2 and one line naming file, column, row and value, rather than guess.  The one
# exception is a view time over a day, which a real export can hold for one row (a session
# across midnight counted on one date): such rows are dropped and counted like non-positive ones.

#: Largest user handle, shared by the loader and the API: handles are stored as int64 (numpy,
#: DynamoDB keys read back into Python ints), so a larger one would wrap around and invent a user.
MAX_USER_HANDLE: int = 2**63 - 1

#: Longest tag, course id or author handle, in characters after stripping.  The published
#: tables stay under 80; a longer value is almost always an unclosed quote that swallowed rows.
MAX_TEXT_LENGTH: int = 200

#: Largest view time of one row (one user, course and date): a day has 86,400 seconds.  Larger
#: (finite) values are dropped and counted; without a bound, sums of them overflow to inf.
MAX_VIEW_TIME_SECONDS: float = 86_400.0

#: Skill IQ assessment scores are published on a 0..300 scale (the real table: 0..298).
SCORE_RANGE: tuple[float, float] = (0.0, 300.0)

#: Dates must fall between the Unix epoch and one day after the run (UTC): a date outside is a
#: default value (0001-01-01, 1900-01-01) or a wrong century, not a real event.
EARLIEST_DATE: str = "1970-01-01"
FUTURE_DATE_SLACK_DAYS: int = 1
