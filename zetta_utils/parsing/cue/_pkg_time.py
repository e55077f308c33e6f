"""The functions of CUE v0.4's ``time`` package: ``ParseDuration`` and ``Duration`` (Go's
duration syntax, nanoseconds in an int64), ``Unix`` (an instant written as RFC 3339 in UTC),
``Parse`` (Go's time.Parse with a reference-time layout, the instant as RFC 3339 in UTC) and
the validators ``Format`` and ``Time`` (the value parses with the layout, resp. RFC 3339).
"""

from __future__ import annotations

from ._builtins import Builtin, Call, functions
from ._errors import unsupported
from ._gotime import TimeParseError, go_parse
from ._values import make_int

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_MAX = (1 << 63) - 1


class DurationError(ValueError):
    pass


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration (the int64 version of the Go that built CUE v0.4)."""
    s = text
    bad = DurationError("time: invalid duration " + _quote(text))
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise bad
    d = 0
    while s:
        if not (s[0] == "." or "0" <= s[0] <= "9"):
            raise bad
        i, v = 0, 0
        while i < len(s) and "0" <= s[i] <= "9":
            if v > _MAX // 10:
                raise bad
            v = v * 10 + ord(s[i]) - 48
            if v > _MAX:
                raise bad
            i += 1
        pre = i > 0
        s = s[i:]
        post = False
        f, scale = 0, 1.0
        if s and s[0] == ".":
            s = s[1:]
            i, overflow = 0, False
            while i < len(s) and "0" <= s[i] <= "9":
                if not overflow:
                    if f > _MAX // 10:
                        overflow = True
                    else:
                        y = f * 10 + ord(s[i]) - 48
                        if y > _MAX:
                            overflow = True
                        else:
                            f = y
                            scale *= 10
                i += 1
            post = i > 0
            s = s[i:]
        if not pre and not post:
            raise bad
        i = 0
        while i < len(s) and not (s[i] == "." or "0" <= s[i] <= "9"):
            i += 1
        if i == 0:
            raise DurationError("time: missing unit in duration " + _quote(text))
        u, s = s[:i], s[i:]
        unit = _UNITS.get(u)
        if unit is None:
            raise DurationError("time: unknown unit " + _quote(u) + " in duration " + _quote(text))
        if v > _MAX // unit:
            raise bad
        v *= unit
        if f > 0:
            v += int(float(f) * (float(unit) / scale))
            if v > _MAX:
                raise bad
        d += v
        if d > _MAX:
            raise bad
    return -d if neg else d


def _civil(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count from 1970-01-01, proleptic Gregorian."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y), m, d


def unix_rfc3339(sec: int, nsec: int) -> str:
    """Go's time.Unix(sec, nsec).UTC().Format(time.RFC3339Nano)."""
    if nsec < 0 or nsec >= 1_000_000_000:
        n = int(nsec / 1_000_000_000)  # Go's division truncates
        sec += n
        nsec -= n * 1_000_000_000
        if nsec < 0:
            nsec += 1_000_000_000
            sec -= 1
    days, rem = divmod(sec, 86400)
    y, mo, d = _civil(days)
    hh, rem = divmod(rem, 3600)
    mm, ss = divmod(rem, 60)
    year = f"-{-y:04d}" if y < 0 else f"{y:04d}"
    frac = f".{nsec:09d}".rstrip("0") if nsec else ""
    return f"{year}-{mo:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}{frac}Z"


def _time_funcs() -> dict[str, Builtin]:
    def parse(c: Call) -> object:
        try:
            return make_int(parse_duration(c.string(0)))
        except DurationError as e:
            raise c.fail(str(e)) from None

    def duration(c: Call) -> object:
        try:
            parse_duration(c.string(0))
        except DurationError as e:
            raise c.fail(str(e)) from None
        return True

    def unix(c: Call) -> object:
        sec, nsec = c.integer(0), c.integer(1)
        for i, v in ((0, sec), (1, nsec)):
            if not -(1 << 63) <= v <= _MAX:
                raise c.fail(f"argument {i} out of range for int64")
        if abs(sec) > 1 << 60:  # Go's internal seconds would wrap around
            raise unsupported(c.pos, "time.Unix of more than 2**60 seconds")
        return unix_rfc3339(sec, nsec)

    def parse_layout(c: Call) -> object:
        try:
            sec, nsec = go_parse(c.string(0), c.string(1))
        except TimeParseError as e:
            raise c.fail(str(e)) from None
        return unix_rfc3339(sec, nsec)

    def layout_check(c: Call, value: str, layout: str) -> object:
        try:
            go_parse(layout, value)
        except TimeParseError:
            raise c.fail(f"invalid time {_quote(value)}") from None
        return True

    fs = [
        Builtin("time.Parse", 2, parse_layout),
        Builtin(
            "time.Format", 2, lambda c: layout_check(c, c.string(0), c.string(1)), validator=True
        ),
        Builtin(
            "time.Time",
            1,
            lambda c: layout_check(c, c.string(0), "2006-01-02T15:04:05.999999999Z07:00"),
            validator=True,
        ),
        Builtin("time.ParseDuration", 1, parse),
        Builtin("time.Duration", 1, duration, validator=True),
        Builtin("time.Unix", 2, unix),
    ]
    return functions("time", fs)


TIME_FUNCS = _time_funcs()
