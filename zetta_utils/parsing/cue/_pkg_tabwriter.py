"""``text/tabwriter.Write`` of CUE v0.4: Go's ``text/tabwriter`` with CUE's settings
(minimum width 0, tab width 4, padding 1, padded with spaces, no flags), re-implemented.

Cells end at a tab, vertical tab, newline or form feed; a column block is a run of lines
that have a cell in that column, and its width is the widest cell plus the padding. The
argument is a string, bytes, or a list of them (each followed by a newline).
"""

from __future__ import annotations

from ._builtins import Builtin, Call, functions

_ESCAPE = 0xFF


class _Cell:
    __slots__ = ("htab", "size", "width")

    def __init__(self) -> None:
        self.size = 0  # bytes
        self.width = 0  # runes
        self.htab = False


def _runes(b: bytes) -> int:
    """utf8.RuneCount: an invalid byte counts as one rune."""
    return len(b.decode("utf-8", errors="surrogateescape"))


class TabWriter:
    minwidth, tabwidth, padding = 0, 4, 1

    def __init__(self) -> None:
        self.out = bytearray()
        self._reset()

    def _reset(self) -> None:
        self.buf = bytearray()
        self.pos = 0
        self.cell = _Cell()
        self.end_char = 0
        self.lines: list[list[_Cell]] = [[]]
        self.widths: list[int] = []

    def _pad(self, textw: int, cellw: int) -> None:
        self.out += b" " * (cellw - textw)

    def _write_lines(self, pos: int, line0: int, line1: int) -> int:
        for i in range(line0, line1):
            for j, c in enumerate(self.lines[i]):
                if c.size > 0:
                    self.out += self.buf[pos : pos + c.size]
                    pos += c.size
                if j < len(self.widths):
                    self._pad(c.width, self.widths[j])
            if i + 1 == len(self.lines):
                self.out += self.buf[pos : pos + self.cell.size]
                pos += self.cell.size
            else:
                self.out += b"\n"
        return pos

    def _format(self, pos: int, line0: int, line1: int) -> int:
        column = len(self.widths)
        this = line0
        while this < line1:
            if column < len(self.lines[this]) - 1:
                pos = self._write_lines(pos, line0, this)
                line0 = this
                width = self.minwidth
                while this < line1:
                    line = self.lines[this]
                    if column < len(line) - 1:
                        width = max(width, line[column].width + self.padding)
                    else:
                        break
                    this += 1
                self.widths.append(width)
                pos = self._format(pos, line0, this)
                self.widths.pop()
                line0 = this
            else:
                this += 1
        return self._write_lines(pos, line0, line1)

    def _append(self, text: bytes) -> None:
        self.buf += text
        self.cell.size += len(text)

    def _update_width(self) -> None:
        self.cell.width += _runes(bytes(self.buf[self.pos :]))
        self.pos = len(self.buf)

    def _end_escape(self) -> None:
        if self.end_char == _ESCAPE:
            self._update_width()
            self.cell.width -= 2  # the Escape characters do not count
        self.pos = len(self.buf)
        self.end_char = 0

    def _terminate_cell(self, htab: bool) -> int:
        self.cell.htab = htab
        self.lines[-1].append(self.cell)
        self.cell = _Cell()
        return len(self.lines[-1])

    def flush(self) -> None:
        if self.cell.size > 0:
            if self.end_char != 0:
                self._end_escape()
            self._terminate_cell(False)
        self._format(0, 0, len(self.lines))
        self._reset()

    def write(self, data: bytes) -> None:
        n = 0
        for i, ch in enumerate(data):
            if self.end_char == 0:
                if ch in (9, 11, 10, 12):  # \t \v \n \f end a cell
                    self._append(data[n:i])
                    self._update_width()
                    n = i + 1
                    ncells = self._terminate_cell(ch == 9)
                    if ch in (10, 12):
                        self.lines.append([])
                        if ch == 12 or ncells == 1:
                            self.flush()
                elif ch == _ESCAPE:
                    self._append(data[n:i])
                    self._update_width()
                    n = i
                    self.end_char = _ESCAPE
            elif ch == self.end_char:
                self._append(data[n : i + 1])
                n = i + 1
                self._end_escape()
        self._append(data[n:])


def _write(c: Call) -> object:
    v = c.raw(0)
    tw = TabWriter()
    if isinstance(v, (str, bytes)):
        tw.write(c.bytes_(0))
    else:
        items = c.items(0)
        for x in items:
            if isinstance(x, str):
                tw.write(x.encode())
            elif isinstance(x, bytes):
                tw.write(x)
            else:
                raise c.fail("list elements must be strings or bytes")
            tw.write(b"\n")
    tw.flush()
    # A byte that is not UTF-8 becomes U+FFFD, one per byte, as CUE exports Go's string.
    text = bytes(tw.out).decode("utf-8", errors="surrogateescape")
    return "".join("\ufffd" if "\udc80" <= ch <= "\udcff" else ch for ch in text)


PACKAGES: dict[str, dict[str, object]] = {
    "text/tabwriter": dict(functions("text/tabwriter", [Builtin("tabwriter.Write", 1, _write)])),
}
