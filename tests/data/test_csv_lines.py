"""Editor line numbers of CSV records, checked against Python's csv module as the reference."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from recommender.data import csv_lines


def _random_csv(rng: random.Random, rows: int) -> str:
    """Quoted fields with newlines, lone CRs and doubled quotes, quotes inside unquoted text,
    blank lines, CRLF, LF and CR, a BOM or not, no final newline, rows of two to four fields."""
    out = [rng.choice(["", "\ufeff"]) + "a,b,c\n"]
    for i in range(rows):
        for _ in range(rng.choice([0, 0, 0, 1, 2])):
            out.append(rng.choice(["\n", "\r\n", "   \n", "\t\r\n", "\r"]))
        field = rng.choice(["plain", '"two\nlines"', '"say ""hi""\r\nthen\nmore"', '"a,b"', "", '""', '"x\ry"',
                            'ab"c', '"ab"c"d', 'x""y', '""""', '5" floppy'])
        out.append(f"{i},{field}" + rng.choice([",x", ",x", ",x,y", ""]) + rng.choice(["\n", "\r\n", "\r"]))
    return "".join(out).rstrip("\r\n")


def _reference(path: Path) -> tuple[list[int], list[int]]:
    """Start line and fields of every non-blank record (header first), by the csv module's own line count."""
    starts, fields = [], []
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        previous = 0
        for row in reader:
            if row and not (len(row) == 1 and not row[0].strip(" \t\r")):
                starts.append(previous + 1)
                fields.append(len(row))
            previous = reader.line_num
    return starts, fields


@pytest.mark.parametrize("seed", [1, 7, 64, 1 << 22])
def test_record_lines_match_the_csv_module(tmp_path: Path, seed: int):
    path = tmp_path / "t.csv"
    path.write_bytes(_random_csv(random.Random(seed), 60).encode())
    expected, fields = _reference(path)
    assert len(expected) == 61
    assert [csv_lines.record_line(path, r) for r in range(len(expected))] == expected
    assert csv_lines.record_line(path, len(expected)) is None
    header, odd = csv_lines.odd_records(path)
    wrong = [(r, line, f) for r, (line, f) in enumerate(zip(expected, fields)) if f != 3]
    first_long = next((i for i, w in enumerate(wrong) if w[2] > 3), len(wrong) - 1)
    assert header == 3 and [(o.record, o.line, o.fields) for o in odd] == wrong[:first_long + 1]


@pytest.mark.parametrize("seed", range(40))
def test_blocks_of_any_size_give_the_same_records(tmp_path: Path, seed: int):
    """A record, a CRLF or a quoted field cut by a block's edge is still one: every block size
    gives the records of the one-block scan."""
    path = tmp_path / "t.csv"
    path.write_bytes(_random_csv(random.Random(seed), 30).encode())

    def records(size: int) -> list[tuple]:
        return [r for block in csv_lines.scan(path, size) for r in zip(
            block.lines.tolist(), block.fields.tolist(), block.blank.tolist(), block.starts.tolist(), block.ends.tolist())]

    whole = records(1 << 20)
    assert [line for line, _, blank, *_ in whole if not blank] == _reference(path)[0]
    for size in (1, 2, 3, 7, 64):
        assert records(size) == whole, size


def test_record_lines_by_hand(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_bytes(b'a,b\n\n"x\ny",1\n  \n2,3\r\n')
    assert [csv_lines.record_line(path, r) for r in range(4)] == [1, 3, 6, None]
    assert csv_lines.data_row_line(path, 1) == 6
    assert csv_lines.data_row_line(path, 5) == 7  # beyond the file: the record count


def test_odd_records_by_hand(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_text('a,b\n\n"x\ny"\n\n2,3\n4,5,6\n7\n')
    header, odd = csv_lines.odd_records(path)
    # The short record on line 3 and the long one on line 7; nothing after the first long one.
    assert header == 2 and [(o.record, o.line, o.fields) for o in odd] == [(1, 3, 1), (3, 7, 3)]
    path.write_text('a,b\n1,"never\nclosed\n')
    assert [(o.line, o.unclosed) for o in csv_lines.odd_records(path)[1]] == [(2, True)]


def test_undecodable_line(tmp_path: Path):
    path = tmp_path / "t.csv"
    # Valid multi-byte characters, then one invalid byte on line 4.
    path.write_bytes("h\u00e9\n\u20ac\u20ac\n\U0001f600\n".encode() + b"ok \xff\n")
    assert csv_lines.undecodable_line(path) == (4, b"\xff")
    path.write_bytes("h\u00e9\n\u20ac".encode() + "\u20ac".encode()[:2])  # truncated at the end
    assert csv_lines.undecodable_line(path) == (2, b"\xe2\x82")
    path.write_bytes("fine \u00e9\n".encode())
    assert csv_lines.undecodable_line(path) is None
