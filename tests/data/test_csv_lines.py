"""Editor line numbers of CSV records, checked against Python's csv module as the reference."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from recommender.data import csv_lines


def _random_csv(rng: random.Random, rows: int) -> str:
    """Quoted fields with newlines and doubled quotes, blank lines, CRLF and LF, no final newline."""
    out = ["a,b,c\n"]
    for i in range(rows):
        for _ in range(rng.choice([0, 0, 0, 1, 2])):
            out.append(rng.choice(["\n", "\r\n", "   \n", "\t\r\n"]))
        field = rng.choice(["plain", '"two\nlines"', '"say ""hi""\r\nthen\nmore"', '"a,b"', ""])
        out.append(f"{i},{field},x" + rng.choice(["\n", "\r\n"]))
    return "".join(out).rstrip("\r\n")


def _reference(path: Path) -> list[int]:
    """Start line of every non-blank record (header first), by the csv module's own line count."""
    starts = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        previous = 0
        for row in reader:
            if row and not (len(row) == 1 and not row[0].strip(" \t\r")):
                starts.append(previous + 1)
            previous = reader.line_num
    return starts


@pytest.mark.parametrize("seed", [1, 7, 64, 1 << 22])
def test_record_lines_match_the_csv_module(tmp_path: Path, seed: int):
    path = tmp_path / "t.csv"
    path.write_bytes(_random_csv(random.Random(seed), 60).encode())
    expected = _reference(path)
    assert len(expected) == 61
    assert [csv_lines.record_line(path, r) for r in range(len(expected))] == expected
    assert csv_lines.record_line(path, len(expected)) is None


def test_record_lines_by_hand(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_bytes(b'a,b\n\n"x\ny",1\n  \n2,3\r\n')
    assert [csv_lines.record_line(path, r) for r in range(4)] == [1, 3, 6, None]
    assert [csv_lines.record_line(path, r, skip_blank=False) for r in range(6)] == [1, 2, 3, 5, 6, None]
    assert csv_lines.data_row_line(path, 1) == 6
    assert csv_lines.data_row_line(path, 5) == 7  # beyond the file: the record count


def test_blank_lines_count_as_records_for_the_tokenizer_numbering(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_text('a,b\n\n"x\ny",1\n\n2,3\n4,5,6\n')
    # pandas reports "line 6" for 4,5,6 (it counts blank lines, not quoted newlines): line 7.
    assert csv_lines.tokenizer_error(path, "Expected 2 fields in line 6, saw 3") == (7, "expected 2 fields, saw 3")


def test_undecodable_line(tmp_path: Path):
    path = tmp_path / "t.csv"
    # Valid multi-byte characters, then one invalid byte on line 4.
    path.write_bytes("h\u00e9\n\u20ac\u20ac\n\U0001f600\n".encode() + b"ok \xff\n")
    assert csv_lines.undecodable_line(path) == (4, b"\xff")
    path.write_bytes("h\u00e9\n\u20ac".encode() + "\u20ac".encode()[:2])  # truncated at the end
    assert csv_lines.undecodable_line(path) == (2, b"\xe2\x82")
    path.write_bytes("fine \u00e9\n".encode())
    assert csv_lines.undecodable_line(path) is None
