"""The loader on the real published tables and on broken copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from recommender.api.schemas import parse_user_handle
from recommender.data.loader import DataValidationError, load_table, load_tables
from recommender.data.schema import COLUMNS, FILES, MAX_USER_HANDLE
from tests.conftest import REAL_DATA


def test_real_course_tags_load_and_drop_empty_tags():
    frame, dropped, rows_read = load_table(REAL_DATA, "course_tags")
    assert rows_read == 11_337
    assert dropped["empty course_tags"] == 112
    # 112 of the 5,942 published courses have only the empty tag, so they leave the catalogue.
    assert frame["course_id"].nunique() == 5_942 - 112
    assert frame["course_tags"].nunique() == 996
    assert (frame["course_tags"] == frame["course_tags"].str.strip().str.lower()).all()
    assert not frame.duplicated().any()


def test_real_assessment_scores_load_with_types():
    frame, dropped, rows_read = load_table(REAL_DATA, "user_assessment_scores")
    assert rows_read == 6_571 and len(frame) == 6_571
    assert frame["user_handle"].nunique() == 3_114
    assert frame["assessment_tag"].nunique() == 54
    assert frame["user_handle"].dtype == "int64"
    assert pd.api.types.is_datetime64_any_dtype(frame["user_assessment_date"])
    assert frame["user_assessment_score"].between(0, 300).all()


def _copy(src: Path, dst: Path) -> Path:
    for name in FILES.values():
        shutil.copy(src / name, dst / name)
    return dst


def _rewrite(path: Path, text: str) -> None:
    path.write_text(text)


def test_missing_file_is_named(tmp_path: Path):
    with pytest.raises(DataValidationError, match=r"user_interests\.csv: file not found"):
        load_tables(tmp_path)


def test_missing_column_is_named(tmp_path: Path, small_dataset: Path):
    _copy(small_dataset, tmp_path)
    views = pd.read_csv(tmp_path / "user_course_views.csv").drop(columns=["level"])
    views.to_csv(tmp_path / "user_course_views.csv", index=False)
    with pytest.raises(DataValidationError) as info:
        load_tables(tmp_path)
    assert "user_course_views.csv: column 'level': required column missing" in str(info.value)


@pytest.mark.parametrize("bad", ["abc", "-3", "1.5", ""])
def test_unparseable_user_handle_names_file_column_row(tmp_path: Path, bad: str):
    _rewrite(tmp_path / "user_interests.csv", f"user_handle,interest_tag,date_followed\n1,java,2017-01-01\n{bad},python,2017-01-02\n")
    with pytest.raises(DataValidationError) as info:
        load_table(tmp_path, "user_interests")
    assert str(info.value).endswith(f"user_interests.csv: column 'user_handle', row 3: value {bad!r} is not a positive integer")


def test_unparseable_date_is_an_error(tmp_path: Path):
    _rewrite(tmp_path / "user_interests.csv", "user_handle,interest_tag,date_followed\n1,java,yesterday\n")
    with pytest.raises(DataValidationError, match=r"column 'date_followed', row 2"):
        load_table(tmp_path, "user_interests")


def test_views_drop_and_normalise(tmp_path: Path):
    _rewrite(
        tmp_path / "user_course_views.csv",
        "user_handle,view_date,course_id,author_handle,level,view_time_seconds\n"
        "1,2017-06-27,course-a,875,Beginner,3786\n"
        "1,2017-06-27,course-a,875,Beginner,3786\n"  # exact duplicate
        "1,2017-06-28,course-a,875, beginner ,1098\n"  # level normalised
        "2,2017-06-28,course-b,875,Expert,100\n"  # unknown level
        "3,2017-06-28,course-b,875,Advanced,0\n"  # non-positive view time
        "3,2017-06-28,course-c,875,Advanced,-5\n",
    )
    frame, dropped, rows_read = load_table(tmp_path, "user_course_views")
    assert rows_read == 6
    assert dropped == {"exact duplicate row": 1, "unknown level": 1, "non-positive view_time_seconds": 2}
    assert frame["level"].tolist() == ["Beginner", "Beginner"]


def test_non_numeric_view_time_is_an_error(tmp_path: Path):
    _rewrite(
        tmp_path / "user_course_views.csv",
        "user_handle,view_date,course_id,author_handle,level,view_time_seconds\n1,2017-06-27,a,1,Beginner,long\n",
    )
    with pytest.raises(DataValidationError, match=r"column 'view_time_seconds', row 2: value 'long' is not a number"):
        load_table(tmp_path, "user_course_views")


def test_interest_tags_lowercased_stripped_empty_dropped_duplicates_after_normalising(tmp_path: Path):
    _rewrite(
        tmp_path / "user_interests.csv",
        "user_handle,interest_tag,date_followed\n"
        "1, C# ,2017-01-01\n"
        "1,c#,2017-01-01\n"
        "1,,2017-01-01\n"
        "2,Node.js,2017-01-02 10:00:00\n",
    )
    frame, dropped, _ = load_table(tmp_path, "user_interests")
    assert frame["interest_tag"].tolist() == ["c#", "node.js"]
    assert dropped == {"empty interest_tag": 1, "exact duplicate row": 1}


def test_not_a_csv(tmp_path: Path):
    (tmp_path / "course_tags.csv").write_bytes(b"")
    with pytest.raises(DataValidationError, match="course_tags.csv: file is empty"):
        load_table(tmp_path, "course_tags")


def test_only_requested_tables_are_read(tmp_path: Path, small_dataset: Path):
    shutil.copy(small_dataset / "user_interests.csv", tmp_path / "user_interests.csv")
    tables = load_tables(tmp_path, ("user_interests",))
    assert len(tables.user_interests) > 0 and tables.user_course_views.empty


# --- Bad input never becomes wrong data (issue 7 C, issue 11.2, 11.4, 11.5) ---------------------

INTERESTS = "user_handle,interest_tag,date_followed\n"
VIEWS = "user_handle,view_date,course_id,author_handle,level,view_time_seconds\n"
SCORES = "user_handle,assessment_tag,user_assessment_date,user_assessment_score\n"


def _error(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / FILES[name]).write_text(text)
    with pytest.raises(DataValidationError) as info:
        load_table(tmp_path, name)
    return str(info.value)


@pytest.mark.parametrize("handle", ["9223372036854775808", "1180591620717411303424", "99999999999999999999999999"])
def test_handle_above_int64_is_refused_not_wrapped(tmp_path: Path, handle: str):
    message = _error(tmp_path, "user_interests", f"{INTERESTS}1,java,2017-01-01\n{handle},python,2017-01-02\n")
    assert message.endswith(f"user_interests.csv: column 'user_handle', row 3: value '{handle}' "
                            f"is above the largest user handle, {MAX_USER_HANDLE}")


def test_largest_handle_loads_exactly_and_the_api_agrees(tmp_path: Path):
    (tmp_path / "user_interests.csv").write_text(f"{INTERESTS}{MAX_USER_HANDLE},java,2017-01-01\n")
    frame, _, _ = load_table(tmp_path, "user_interests")
    assert frame["user_handle"].tolist() == [MAX_USER_HANDLE]
    # The API takes exactly the handles the loader can produce: the same bound, one constant.
    assert parse_user_handle(MAX_USER_HANDLE) == MAX_USER_HANDLE
    with pytest.raises(ValueError):
        parse_user_handle(MAX_USER_HANDLE + 1)


def test_handles_beyond_2_53_keep_every_digit_when_another_row_looks_like_a_float(tmp_path: Path):
    # pandas reads such a column as float64: 9007199254740993 would become ...992, another user.
    (tmp_path / "user_interests.csv").write_text(
        f"{INTERESTS}9007199254740993,java,2017-01-01\n12.0,python,2017-01-01\n+7,go,2017-01-01\n"
        f"{MAX_USER_HANDLE}.00,sql,2017-01-01\n")
    frame, _, _ = load_table(tmp_path, "user_interests")
    assert frame["user_handle"].dtype == "int64"
    # 12.0 (a fraction of zeros only) is the integer 12, exactly; docs/data.md says so.
    assert frame["user_handle"].tolist() == [9_007_199_254_740_993, 12, 7, MAX_USER_HANDLE]


@pytest.mark.parametrize("handle", ["12.5", "1e3", "12.", "0x10", "0.0", "-12.0", "1 2"])
def test_handle_that_is_not_an_integer_is_refused(tmp_path: Path, handle: str):
    message = _error(tmp_path, "user_interests", f"{INTERESTS}1,java,2017-01-01\n{handle},python,2017-01-02\n")
    assert message.endswith(f"column 'user_handle', row 3: value '{handle}' is not a positive integer")


NON_FINITE = ["inf", "-inf", "+inf", "INF", "Infinity", "-Infinity", "iNfInItY", "1e400", "nan", "NaN", "NAN"]


@pytest.mark.parametrize("value", NON_FINITE)
def test_non_finite_view_time_is_refused(tmp_path: Path, value: str):
    message = _error(tmp_path, "user_course_views",
                     f"{VIEWS}1,2017-06-27,a,1,Beginner,30\n1,2017-06-28,b,1,Beginner,{value}\n")
    assert f"user_course_views.csv: column 'view_time_seconds', row 3: value '{value}' is not a" in message


@pytest.mark.parametrize("value", NON_FINITE)
def test_non_finite_score_is_refused(tmp_path: Path, value: str):
    message = _error(tmp_path, "user_assessment_scores", f"{SCORES}1,java,2017-06-27,100\n1,sql,2017-06-27,{value}\n")
    assert f"user_assessment_scores.csv: column 'user_assessment_score', row 3: value '{value}' is not a" in message


@pytest.mark.parametrize("score", ["-1", "-0.5", "300.5", "301", "1e6"])
def test_score_outside_0_to_300_is_refused(tmp_path: Path, score: str):
    message = _error(tmp_path, "user_assessment_scores", f"{SCORES}1,java,2017-06-27,{score}\n")
    assert message.endswith(f"column 'user_assessment_score', row 2: value '{score}' is outside the accepted range 0..300")


def test_scores_at_the_bounds_load(tmp_path: Path):
    (tmp_path / "user_assessment_scores.csv").write_text(f"{SCORES}1,java,2017-06-27,0\n2,java,2017-06-27,300\n3,sql,2017-06-27,142.5\n")
    frame, _, _ = load_table(tmp_path, "user_assessment_scores")
    assert frame["user_assessment_score"].tolist() == [0.0, 300.0, 142.5]


def test_view_time_over_a_day_is_dropped_and_counted(tmp_path: Path):
    (tmp_path / "user_course_views.csv").write_text(
        f"{VIEWS}1,2017-06-27,a,1,Beginner,86400\n1,2017-06-28,a,1,Beginner,86401\n2,2017-06-28,b,1,Beginner,1e300\n")
    frame, dropped, rows_read = load_table(tmp_path, "user_course_views")
    assert rows_read == 3
    assert frame["view_time_seconds"].tolist() == [86_400.0]
    assert dropped == {"view_time_seconds over 86,400 (one day)": 2}


@pytest.mark.parametrize("name", list(FILES))
def test_header_without_rows_is_one_clear_error(tmp_path: Path, name: str):
    message = _error(tmp_path, name, ",".join(COLUMNS[name]) + "\n\n")
    assert message == f"{tmp_path / FILES[name]}: no data rows"


@pytest.mark.parametrize("date", ["1969-12-31", "1900-01-01", "0001-01-01", "2999-01-01", "2200-06-01T00:00:00Z"])
def test_date_before_1970_or_after_tomorrow_is_refused(tmp_path: Path, date: str):
    message = _error(tmp_path, "user_interests", f"{INTERESTS}1,java,2017-01-01\n2,java,{date}\n")
    assert f"column 'date_followed', row 3: value '{date}' is not between 1970-01-01 and one day after the run" in message


def test_date_of_today_loads(tmp_path: Path):
    today = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d")
    (tmp_path / "user_interests.csv").write_text(f"{INTERESTS}1,java,1970-01-01\n2,java,{today}\n")
    frame, _, _ = load_table(tmp_path, "user_interests")
    assert frame["date_followed"].dt.strftime("%Y-%m-%d").tolist() == ["1970-01-01", today]


def test_dates_with_and_without_offsets_are_all_read_as_utc(tmp_path: Path):
    (tmp_path / "user_assessment_scores.csv").write_text(
        f"{SCORES}1,java,2019-07-31,1\n1,sql,2019-07-31T10:00:00Z,2\n"
        "1,css,2019-07-31T12:00:00+02:00,3\n1,go,2019-07-31 10:00:00,4\n1,c,2019-07-31T05:30:00-04:30,5\n")
    frame, _, _ = load_table(tmp_path, "user_assessment_scores")
    dates = frame["user_assessment_date"]
    assert dates.dt.tz is None  # naive, every value on the UTC clock
    assert dates.dt.strftime("%Y-%m-%d %H:%M").tolist() == [
        "2019-07-31 00:00", "2019-07-31 10:00", "2019-07-31 10:00", "2019-07-31 10:00", "2019-07-31 10:00"]


@pytest.mark.parametrize(("name", "column", "line"), [
    ("user_interests", "interest_tag", "1,{long},2017-01-01"),
    ("course_tags", "course_tags", "course-a,{long}"),
    ("course_tags", "course_id", "{long},python"),
    ("user_assessment_scores", "assessment_tag", "1,{long},2017-01-01,10"),
    ("user_course_views", "course_id", "1,2017-06-27,{long},1,Beginner,30"),
    ("user_course_views", "author_handle", "1,2017-06-27,a,{long},Beginner,30"),
])
def test_text_over_200_characters_is_refused(tmp_path: Path, name: str, column: str, line: str):
    long = "x" * 10_000
    message = _error(tmp_path, name, ",".join(COLUMNS[name]) + "\n" + line.format(long=long) + "\n")
    assert message.endswith(f"column '{column}', row 2: value 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... "
                            "(10,000 characters) is longer than 200 characters")


def test_text_of_200_characters_loads(tmp_path: Path):
    (tmp_path / "user_interests.csv").write_text(f"{INTERESTS}1, {'T' * 200} ,2017-01-01\n")
    frame, _, _ = load_table(tmp_path, "user_interests")
    assert frame["interest_tag"].tolist() == ["t" * 200]


def test_row_is_the_line_an_editor_shows(tmp_path: Path):
    # A quoted tag spanning two lines, blank lines and CRLF: the bad handle is on line 7.
    text = INTERESTS + '1,"multi\r\nline",2017-01-01\r\n\r\n   \n2,java,2017-01-01\nx,python,2017-01-02\n'
    (tmp_path / "user_interests.csv").write_bytes(text.encode())
    with pytest.raises(DataValidationError) as info:
        load_table(tmp_path, "user_interests")
    assert info.value.row == 7 and "row 7: value 'x'" in str(info.value)


def test_extra_field_names_the_editor_line(tmp_path: Path):
    text = INTERESTS + '1,"a\nb",2017-01-01\n\n2,java,2017-01-01\n3,sql,2017-01-01,surplus\n'
    message = _error(tmp_path, "user_interests", text)
    assert message.endswith("user_interests.csv, row 6: not a readable CSV file: expected 3 fields, saw 4")


def test_extra_field_on_the_first_row_is_not_taken_for_an_index(tmp_path: Path):
    # pandas would silently shift every column by one (the handles becoming the index).
    message = _error(tmp_path, "user_interests", INTERESTS + "\n1,java,2017-01-01,x\n2,sql,2017-01-01,y\n")
    assert message.endswith("user_interests.csv, row 3: not a readable CSV file: expected 3 fields, saw 4")
    message = _error(tmp_path, "user_interests", INTERESTS + "1,java,2017-01-01,x,y\n")
    assert message.endswith("user_interests.csv, row 2: not a readable CSV file: expected 3 fields, saw 5")


def test_encoding_error_names_the_line(tmp_path: Path):
    text = (INTERESTS + "1,java,2017-01-01\n" * 50_000).encode() + "2,caf\u00e9,2017-01-01\n".encode("latin-1")
    (tmp_path / "user_interests.csv").write_bytes(text)
    with pytest.raises(DataValidationError) as info:
        load_table(tmp_path, "user_interests")
    assert str(info.value).endswith("user_interests.csv, row 50002: not UTF-8 text (bytes e9); save the file as UTF-8")


def test_directory_named_like_a_table_is_named_as_such(tmp_path: Path):
    (tmp_path / "user_interests.csv").mkdir()
    with pytest.raises(DataValidationError, match=r"user_interests\.csv: is a directory$"):
        load_table(tmp_path, "user_interests")


def test_unreadable_table_is_permission_denied(tmp_path: Path, raised_unprivileged):
    (tmp_path / "course_tags.csv").write_text("course_id,course_tags\na,java\n")
    (tmp_path / "course_tags.csv").chmod(0o000)
    code = f"from recommender.data.loader import load_table\nload_table({str(tmp_path)!r}, 'course_tags')"
    assert raised_unprivileged(code) == \
        f"recommender.data.loader.DataValidationError: {tmp_path / 'course_tags.csv'}: permission denied"


def test_the_generator_keeps_the_modelled_columns_with_the_same_values(small_dataset):
    from recommender.data.loader import CATEGORICAL, NOT_MODELLED

    full, modelled = load_tables(small_dataset), load_tables(small_dataset, modelled_only=True)
    for name in NOT_MODELLED:
        before, after = getattr(full, name), getattr(modelled, name)
        assert list(after.columns) == [c for c in before.columns if c not in NOT_MODELLED[name]]
        for column in after.columns:
            if column in CATEGORICAL[name]:
                assert isinstance(after[column].dtype, pd.CategoricalDtype)
                assert set(after[column].cat.categories) == set(before[column])  # no unused category
            assert after[column].astype(before[column].dtype).equals(before[column]), (name, column)
