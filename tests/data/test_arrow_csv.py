"""The one CSV reader against Python's csv module (the reference), cell for cell, and its errors."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from recommender.data.arrow_csv import CsvError, read_columns

COLUMNS = ("user_handle", "interest_tag", "date_followed")


def _reference(path: Path) -> dict[str, list[str]]:
    """The csv module's reading: blank lines skipped, a short row's missing fields empty, header names stripped."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle) if row and not (len(row) == 1 and not row[0].strip(" \t\r"))]
    header = [name.strip() for name in rows[0]]
    return {c: [(row + [""] * len(header))[header.index(c)] for row in rows[1:]] for c in COLUMNS}


def _random_csv(rng: random.Random, rows: int, short: bool) -> bytes:
    """Valid exports with everything a reader can get wrong: quotes, newlines in fields, blank and
    whitespace-only lines (before the header too), CRLF and lone CR, empty fields, NA-looking
    words, non-ASCII text, quotes inside unquoted text, no final newline, rows without their last fields."""
    out = [rng.choice(["", "\ufeff", "\n  \r\n"]), ' user_handle ,"interest_tag",date_followed,extra\r\n']
    for i in range(rows):
        for _ in range(rng.choice([0, 0, 0, 1])):
            out.append(rng.choice(["\n", "\r\n", "   \n", "\t\r\n"]))
        tag = rng.choice(["java", '"two\nlines"', '"say ""hi""\r\nthen"', '"a,b"', "", "NA", "null", " c# ",
                          "caf\u00e9", '"quoted"', "N/A", "nan", '5" floppy', '"ab"c"d'])
        fields = [str(i), tag, f"2017-01-0{i % 9 + 1}", rng.choice(["", "x", '""'])]
        if short and rng.random() < 0.1:
            fields = fields[:rng.choice([2, 3])]
        out.append(",".join(fields) + rng.choice(["\n", "\r\n", "\r"]))
    return "".join(out).rstrip("\r\n").encode()


@pytest.mark.parametrize("short", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_random_valid_files_read_as_the_csv_module_reads_them(tmp_path: Path, seed: int, short: bool):
    path = tmp_path / "t.csv"
    path.write_bytes(_random_csv(random.Random(seed), 300, short))
    frame = read_columns(path, COLUMNS)
    assert {c: frame[c].tolist() for c in COLUMNS} == _reference(path)
    assert [str(t) for t in frame.dtypes] == ["str"] * 3


def _error(tmp_path: Path, text: bytes) -> CsvError:
    path = tmp_path / "t.csv"
    path.write_bytes(text)
    with pytest.raises(CsvError) as info:
        read_columns(path, COLUMNS)
    return info.value


HEADER = b"user_handle,interest_tag,date_followed\n"


@pytest.mark.parametrize(("text", "line", "message"), [
    (HEADER + b'1,"a\nb",2017-01-01\n\n2,java,2017-01-01,surplus\n', 5, "not a readable CSV file: expected 3 fields, saw 4"),
    (HEADER + b"1,java\n2,java,2017-01-01,x,y\n", 3, "not a readable CSV file: expected 3 fields, saw 5"),
    (HEADER + b"1,caf\xe9,2017-01-01\n", 2, "not UTF-8 text (bytes e9); save the file as UTF-8"),
    (HEADER + b"1,java,2017-01-01\n2,caf\xe9\n", 3, "not UTF-8 text (bytes e9); save the file as UTF-8"),
    (HEADER + b'1,java,2017-01-01\n2,"unclosed,2017-01-01\n3,java,2017-01-01\n', 3,
     "not a readable CSV file: a quoted field that starts here is never closed"),
])
def test_a_file_that_is_not_a_table_names_the_editor_line(tmp_path: Path, text: bytes, line: int, message: str):
    error = _error(tmp_path, text)
    assert (error.row, error.message) == (line, message)


@pytest.mark.parametrize("text", [b"", b"\n  \r\n\t\n"])
def test_a_file_without_a_header_is_empty(tmp_path: Path, text: bytes):
    assert _error(tmp_path, text).message == "file is empty (no header row)"


def test_a_missing_column_is_named(tmp_path: Path):
    error = _error(tmp_path, b"user_handle,date_followed\n1,2017-01-01\n")
    assert (error.column, error.message) == ("interest_tag", "required column missing")


def test_of_two_columns_of_one_name_the_first_is_read(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"user_handle,interest_tag,date_followed,interest_tag\n1,a,2017-01-01,b\n")
    assert read_columns(path, COLUMNS)["interest_tag"].tolist() == ["a"]


def test_header_only_gives_no_rows(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_text(",".join(COLUMNS) + "\n\n")
    frame = read_columns(path, COLUMNS)
    assert frame.empty and list(frame.columns) == list(COLUMNS)
