"""Where a CSV record is in its file, as the line number a person sees in an editor.

The reader counts records, not lines: a quoted field may span several lines and blank lines are
skipped, so "data row 17" and "line 19 of the file" differ as soon as the export has either.
An operator fixes the file in an editor, so every error names the editor's line (header = line
1; for a record spanning lines, the line where it starts).

These scans run only when an error is reported, or when a row needs fields the reader left out,
never on the loading path: a good file is read once, by pyarrow.  They do not parse fields; they
find where records start and end by the reader's own rules (below), block by block with numpy,
so memory stays bounded whatever the file's size.

The rules are those of pyarrow's reader as the loader configures it: ``"`` opens a quoted field
only as a field's first byte (elsewhere it is an ordinary byte), a doubled quote inside a quoted
field is one quote, a record ends at ``\\n``, ``\\r\\n`` or a lone ``\\r`` outside quotes, and a
record of spaces, tabs and ``\\r`` only is blank (skipped).  Lines are counted as editors count
them: at every ``\\n``, ``\\r\\n`` or lone ``\\r``, inside quotes too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_QUOTE, _COMMA, _LF, _CR = b'"'[0], b","[0], b"\n"[0], b"\r"[0]
_BOM = b"\xef\xbb\xbf"
#: Bytes per scanned block: bounds the scan's temporaries (~6 bytes per byte) whatever the file.
_BLOCK = 8 << 20


@dataclass(frozen=True)
class Records:
    """The records that ended in one block, in file order (numpy arrays of equal length)."""

    lines: np.ndarray  # editor line where each starts
    fields: np.ndarray  # fields: unquoted commas + 1
    blank: np.ndarray  # spaces, tabs and \r only (or nothing): not a record for the reader
    starts: np.ndarray  # byte offset of the first byte
    ends: np.ndarray  # byte offset after the last byte (the terminator excluded)
    unclosed: bool = False  # the last record of the file, with a quote never closed


@dataclass
class _State:
    """What a block leaves to the next: the record it started and whether a quote is open."""

    in_quote: bool = False
    previous: int = _LF  # the byte before the block (a line break before the file's first byte)
    last_quote_active: bool = False  # the block's last byte was a quote that opened or closed a field
    breaks: int = 0  # line breaks before the block
    start: int = 0  # byte offset of the pending record
    start_line: int = 1
    commas: int = 0  # unquoted commas of the pending record so far
    filled: bool = False  # the pending record has a byte that is not blank


def _active_quotes(block: np.ndarray, quotes: np.ndarray, state: _State, first: int) -> np.ndarray:
    """The quotes (positions in ``block``) that open or close a quoted field.

    A quote opens one only at a field's first byte (``first``: the file's first byte after a
    BOM), or right after the quote that closed it (a doubled quote: close and reopen cancel
    out); elsewhere it is text.  When every quote is active (the usual export), quote parity
    alone says what is quoted; otherwise the quotes are walked one by one.
    """
    def field_start(position: int, before: int, before_active: bool) -> bool:
        return (position == first or before in (_COMMA, _LF, _CR)
                or (before == _QUOTE and before_active))

    if len(quotes) == 0:
        return quotes
    opening = np.arange(len(quotes)) % 2 == (1 if state.in_quote else 0)
    before = np.where(quotes > 0, block[np.maximum(quotes - 1, 0)], state.previous)
    at_start = np.isin(before, (_COMMA, _LF, _CR)) | (before == _QUOTE) | (quotes == first)
    if quotes[0] == 0 and state.previous == _QUOTE and not state.last_quote_active:
        at_start[0] = False
    if at_start[opening].all():
        return quotes
    active, inside, last_active_at = [], state.in_quote, -2 if not state.last_quote_active else -1
    for position in quotes.tolist():
        before_byte = int(block[position - 1]) if position > 0 else state.previous
        if inside or field_start(position, before_byte, last_active_at == position - 1):
            active.append(position)
            inside = not inside
            last_active_at = position
    return np.asarray(active, dtype=np.int64)


def scan(path: Path | str, block_size: int = _BLOCK) -> Iterator[Records]:
    """Every record of the file, blank ones included, block by block."""
    state = _State()
    with open(path, "rb") as handle:
        offset = 0
        while chunk := handle.read(block_size):
            while chunk.endswith(b"\r") and (more := handle.read(1)):  # is it \r\n? the next byte decides
                chunk += more
            block = np.frombuffer(chunk, dtype=np.uint8)
            first = len(_BOM) if offset == 0 and chunk.startswith(_BOM) else 0
            if first:
                block = block.copy()
                block[:first] = ord(" ")  # the BOM is no byte of the header (a blank byte)
            yield from _block(block, offset, first if offset == 0 else -1, state)
            offset += len(chunk)
    if offset > state.start:  # the last record, without a final line break
        yield Records(np.array([state.start_line]), np.array([state.commas + 1]), np.array([not state.filled]),
                      np.array([state.start]), np.array([offset]), unclosed=state.in_quote)


_BLANK_BYTE = np.zeros(256, dtype=bool)
_BLANK_BYTE[[ord(" "), ord("\t"), _CR]] = True


def _blank(block: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Whether each segment ``block[starts[i]:ends[i]]`` holds blank bytes only.

    Byte by byte across all segments at once, each leaving at its first other byte: nearly every
    record leaves at its first, so a pass or two decide them all.
    """
    blank = np.ones(len(starts), dtype=bool)
    at = starts.copy()
    open_ = np.flatnonzero(at < ends)
    while len(open_):
        blank_byte = _BLANK_BYTE[block[at[open_]]]
        blank[open_[~blank_byte]] = False
        open_ = open_[blank_byte]
        at[open_] += 1
        open_ = open_[at[open_] < ends[open_]]
    return blank


def _block(block: np.ndarray, offset: int, first: int, state: _State) -> Iterator[Records]:
    quotes = _active_quotes(block, np.flatnonzero(block == _QUOTE), state, first)

    def quoted_before(positions: np.ndarray) -> np.ndarray:
        return (np.searchsorted(quotes, positions) + state.in_quote) % 2 == 1

    is_break = block == _LF
    cr = block == _CR
    is_break[:-1] |= cr[:-1] & ~is_break[1:]  # a lone \r; of \r\n, the \n
    is_break[-1] |= cr[-1]
    breaks = np.flatnonzero(is_break)
    del is_break, cr
    ends = breaks[~quoted_before(breaks)]
    commas = np.flatnonzero(block == _COMMA)
    commas = commas[~quoted_before(commas)]
    if len(ends):
        starts = np.concatenate(([0], ends[:-1] + 1))
        record_commas = np.searchsorted(commas, ends) - np.searchsorted(commas, starts)
        record_commas[0] += state.commas
        blank = _blank(block, starts, ends)
        blank[0] &= not state.filled
        lines = state.breaks + 1 + np.searchsorted(breaks, starts)
        lines[0] = state.start_line
        global_starts = starts + offset
        global_starts[0] = state.start
        content_ends = ends - ((ends > 0) & (block[np.maximum(ends - 1, 0)] == _CR) & (block[ends] == _LF))
        yield Records(lines, record_commas + 1, blank, global_starts, content_ends + offset)
        rest = int(ends[-1]) + 1
        state.start, state.start_line = offset + rest, state.breaks + 1 + int(np.searchsorted(breaks, rest))
        state.commas, state.filled = 0, False
    else:
        rest = 0
    state.commas += int(len(commas) - np.searchsorted(commas, rest))
    state.filled = state.filled or not _blank(block, np.array([rest]), np.array([len(block)]))[0]
    state.breaks += len(breaks)
    state.in_quote = bool((len(quotes) + state.in_quote) % 2)
    state.last_quote_active = len(quotes) > 0 and int(quotes[-1]) == len(block) - 1
    state.previous = int(block[-1])


def record_line(path: Path | str, record: int) -> int | None:
    """Editor line (1-based) where non-blank record ``record`` starts (0: the header); ``None``
    if the file has fewer."""
    seen = 0
    for records in scan(path):
        lines = records.lines[~records.blank]
        if record < seen + len(lines):
            return int(lines[record - seen])
        seen += len(lines)
    return None


def data_row_line(path: Path | str, position: int) -> int:
    """Editor line of data row ``position`` (0-based, as the reader numbered the rows)."""
    line = record_line(path, position + 1)
    return line if line is not None else position + 2  # not found: the record count


@dataclass(frozen=True)
class OddRecord:
    """A non-blank record whose field count differs from the header's, or whose quote is never closed."""

    record: int  # among the non-blank records (0: the header)
    line: int
    fields: int
    start: int
    end: int
    unclosed: bool = False


def odd_records(path: Path | str) -> tuple[int, list[OddRecord]]:
    """(the header's fields, the records with another number of fields), up to the first with
    more (or a last record whose quote is never closed)."""
    found: list[OddRecord] = []
    fields, seen = None, 0
    for records in scan(path):
        keep = ~records.blank
        counts, lines = records.fields[keep], records.lines[keep]
        starts, ends = records.starts[keep], records.ends[keep]
        if fields is None and len(counts):
            fields = int(counts[0])
        odd = counts != fields
        if records.unclosed and len(odd):
            odd[-1] = True
        for i in np.flatnonzero(odd).tolist():
            unclosed = records.unclosed and i == len(odd) - 1
            found.append(OddRecord(seen + i, int(lines[i]), int(counts[i]), int(starts[i]), int(ends[i]), unclosed))
            if unclosed or counts[i] > fields:
                return fields, found
        seen += len(counts)
    return fields or 0, found


def undecodable_line(path: Path | str, encoding: str = "utf-8") -> tuple[int, bytes] | None:
    """(editor line, offending bytes) of the first byte sequence that is not ``encoding``.

    Line by line: in UTF-8 and every ASCII-compatible encoding no character's bytes hold ``\\n``,
    so a line decodes on its own.
    """
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError as exc:
                return number, line[exc.start:exc.end]
    return None
