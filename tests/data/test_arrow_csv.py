"""pyarrow's reading of a table against pandas' (the careful reader), cell for cell."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

from recommender.data.arrow_csv import read_strings

COLUMNS = ("user_handle", "interest_tag", "date_followed")


def _pandas(path: Path) -> pd.DataFrame:
    """What the loader's careful reader gives: every cell a string, nothing taken for missing."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame[list(COLUMNS)].reset_index(drop=True)


def _arrow(path: Path) -> pd.DataFrame | None:
    """The fast reader, given the header as the loader gives it (pandas' names, stripped)."""
    header = [str(c).strip() for c in pd.read_csv(path, nrows=0).columns]
    return read_strings(path, header, COLUMNS)


def _random_csv(rng: random.Random, rows: int) -> bytes:
    """Valid exports with everything a parser can get wrong: quotes, newlines in fields, blank and
    whitespace-only lines, CRLF, empty fields, NA-looking words, non-ASCII text, no final newline."""
    out = ['\ufeff' if rng.random() < 0.5 else "", ' user_handle ,"interest_tag",extra,date_followed\r\n']
    for i in range(rows):
        for _ in range(rng.choice([0, 0, 0, 1])):
            out.append(rng.choice(["\n", "\r\n", "   \n", "\t\r\n"]))
        tag = rng.choice(["java", '"two\nlines"', '"say ""hi""\r\nthen"', '"a,b"', "", "NA", "null", " c# ",
                          "caf\u00e9", '"quoted"', "N/A", "nan"])
        extra = rng.choice(["", "x", '""'])
        out.append(f"{i},{tag},{extra},2017-01-0{i % 9 + 1}" + rng.choice(["\n", "\r\n"]))
    return "".join(out).rstrip("\r\n").encode()


@pytest.mark.parametrize("seed", range(8))
def test_random_valid_files_read_as_pandas_reads_them(tmp_path: Path, seed: int):
    path = tmp_path / "t.csv"
    path.write_bytes(_random_csv(random.Random(seed), 300))
    arrow = _arrow(path)
    assert arrow is not None
    pd.testing.assert_frame_equal(arrow, _pandas(path), check_exact=True)
    assert str(arrow["interest_tag"].dtype) == "str"


@pytest.mark.parametrize("text", [
    b"user_handle,interest_tag,date_followed\n1,java,2017-01-01,surplus\n",  # a field too many
    b"user_handle,interest_tag,date_followed\n1,java\n",  # one too few
    b"user_handle,interest_tag,date_followed\n1,caf\xe9,2017-01-01\n",  # not UTF-8
    b"user_handle,interest_tag,date_followed,interest_tag\n1,a,2017-01-01,b\n",  # pandas renames the second
    b"user_handle,interest_tag,date_followed\n1,\"unclosed,2017-01-01\n2,java,2017-01-01\n",
])
def test_files_pandas_must_judge_are_left_to_it(tmp_path: Path, text: bytes):
    path = tmp_path / "t.csv"
    path.write_bytes(text)
    header = text.split(b"\n")[0].decode().split(",")  # pandas itself may refuse this header
    assert read_strings(path, header, COLUMNS) is None


def test_header_only_gives_no_rows(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_text(",".join(COLUMNS) + "\n\n")
    frame = _arrow(path)
    assert frame is not None and frame.empty and list(frame.columns) == list(COLUMNS)
