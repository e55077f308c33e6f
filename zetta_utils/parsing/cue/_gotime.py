"""Go's ``time.Parse`` (the reference-time layout language, as in the Go that built
CUE v0.4, Go 1.15) for ``time.Parse``, ``time.Format`` and ``time.Time``: the parsed
instant as RFC 3339 in UTC.

Layout and value are handled as UTF-8 bytes, as Go does. The local time zone of the
WebAssembly CUE is UTC, so a zone abbreviation never moves the instant; a numeric offset
does.
"""

from __future__ import annotations

_LONG_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_SHORT_MONTHS = [m[:3] for m in _LONG_MONTHS]
_LONG_DAYS = "Sunday Monday Tuesday Wednesday Thursday Friday Saturday".split()
_SHORT_DAYS = [d[:3] for d in _LONG_DAYS]
_DAYS_BEFORE = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365)

# The layout elements (Go's std* constants); fractions carry their digit count.
LONG_MONTH, MONTH, NUM_MONTH, ZERO_MONTH = "January", "Jan", "1", "01"
LONG_WEEKDAY, WEEKDAY = "Monday", "Mon"
DAY, UNDER_DAY, ZERO_DAY, UNDER_YDAY, ZERO_YDAY = "2", "_2", "02", "__2", "002"
HOUR, HOUR12, ZERO_HOUR12 = "15", "3", "03"
MINUTE, ZERO_MINUTE, SECOND, ZERO_SECOND = "4", "04", "5", "05"
LONG_YEAR, YEAR, PM_UPPER, PM_LOWER, TZ = "2006", "06", "PM", "pm", "MST"
ISO_TZ, ISO_SECONDS_TZ, ISO_SHORT_TZ = "Z0700", "Z070000", "Z07"
ISO_COLON_TZ, ISO_COLON_SECONDS_TZ = "Z07:00", "Z07:00:00"
NUM_TZ, NUM_SECONDS_TZ, NUM_SHORT_TZ = "-0700", "-070000", "-07"
NUM_COLON_TZ, NUM_COLON_SECONDS_TZ = "-07:00", "-07:00:00"
FRAC0, FRAC9 = ".0", ".9"
_STD_0X = (ZERO_MONTH, ZERO_DAY, ZERO_HOUR12, ZERO_MINUTE, ZERO_SECOND, YEAR)


class TimeParseError(ValueError):
    pass


class _Bad(Exception):
    pass


def _starts_lower(s: bytes) -> bool:
    return bool(s) and 0x61 <= s[0] <= 0x7A


def _is_digit(s: bytes, i: int) -> bool:
    return len(s) > i and 0x30 <= s[i] <= 0x39


def next_chunk(layout: bytes) -> tuple[bytes, str | None, int, bytes]:
    """Go's nextStdChunk: (prefix, element or None, fraction digits, suffix)."""
    n = len(layout)
    for i in range(n):
        c = layout[i : i + 1]
        rest = layout[i:]
        if c == b"J":
            if rest[:3] == b"Jan":
                if rest[:7] == b"January":
                    return layout[:i], LONG_MONTH, 0, layout[i + 7 :]
                if not _starts_lower(layout[i + 3 :]):
                    return layout[:i], MONTH, 0, layout[i + 3 :]
        elif c == b"M":
            if rest[:3] == b"Mon":
                if rest[:6] == b"Monday":
                    return layout[:i], LONG_WEEKDAY, 0, layout[i + 6 :]
                if not _starts_lower(layout[i + 3 :]):
                    return layout[:i], WEEKDAY, 0, layout[i + 3 :]
            if rest[:3] == b"MST":
                return layout[:i], TZ, 0, layout[i + 3 :]
        elif c == b"0":
            if len(rest) >= 2 and 0x31 <= rest[1] <= 0x36:
                return layout[:i], _STD_0X[rest[1] - 0x31], 0, layout[i + 2 :]
            if rest[:3] == b"002":
                return layout[:i], ZERO_YDAY, 0, layout[i + 3 :]
        elif c == b"1":
            if rest[:2] == b"15":
                return layout[:i], HOUR, 0, layout[i + 2 :]
            return layout[:i], NUM_MONTH, 0, layout[i + 1 :]
        elif c == b"2":
            if rest[:4] == b"2006":
                return layout[:i], LONG_YEAR, 0, layout[i + 4 :]
            return layout[:i], DAY, 0, layout[i + 1 :]
        elif c == b"_":
            if rest[1:2] == b"2":
                if rest[1:5] == b"2006":
                    return layout[: i + 1], LONG_YEAR, 0, layout[i + 5 :]
                return layout[:i], UNDER_DAY, 0, layout[i + 2 :]
            if rest[:3] == b"__2":
                return layout[:i], UNDER_YDAY, 0, layout[i + 3 :]
        elif c in (b"3", b"4", b"5"):
            std = {b"3": HOUR12, b"4": MINUTE, b"5": SECOND}[c]
            return layout[:i], std, 0, layout[i + 1 :]
        elif c == b"P":
            if rest[:2] == b"PM":
                return layout[:i], PM_UPPER, 0, layout[i + 2 :]
        elif c == b"p":
            if rest[:2] == b"pm":
                return layout[:i], PM_LOWER, 0, layout[i + 2 :]
        elif c in (b"-", b"Z"):
            for std in (
                (NUM_SECONDS_TZ, NUM_COLON_SECONDS_TZ, NUM_TZ, NUM_COLON_TZ, NUM_SHORT_TZ)
                if c == b"-"
                else (ISO_SECONDS_TZ, ISO_COLON_SECONDS_TZ, ISO_TZ, ISO_COLON_TZ, ISO_SHORT_TZ)
            ):
                if rest.startswith(std.encode()):
                    return layout[:i], std, 0, layout[i + len(std) :]
        elif c == b".":
            if i + 1 < n and layout[i + 1] in b"09":
                ch = layout[i + 1]
                j = i + 1
                while j < n and layout[j] == ch:
                    j += 1
                if not _is_digit(layout, j):
                    std = FRAC0 if ch == 0x30 else FRAC9
                    return layout[:i], std, j - (i + 1), layout[j:]
    return layout, None, 0, b""


def _leading_int(s: bytes) -> tuple[int, bytes]:
    x = i = 0
    while i < len(s) and 0x30 <= s[i] <= 0x39:
        if x > ((1 << 63) - 1) // 10:
            raise _Bad
        x = x * 10 + s[i] - 0x30
        if x >= 1 << 63:
            raise _Bad
        i += 1
    return x, s[i:]


def _atoi(s: bytes) -> int:
    neg = False
    if s[:1] in (b"-", b"+"):
        neg = s[:1] == b"-"
        s = s[1:]
    x, rem = _leading_int(s)
    if rem:
        raise _Bad
    return -x if neg else x


def _getnum(s: bytes, fixed: bool) -> tuple[int, bytes]:
    if not _is_digit(s, 0):
        raise _Bad
    if not _is_digit(s, 1):
        if fixed:
            raise _Bad
        return s[0] - 0x30, s[1:]
    return (s[0] - 0x30) * 10 + s[1] - 0x30, s[2:]


def _getnum3(s: bytes, fixed: bool) -> tuple[int, bytes]:
    n = i = 0
    while i < 3 and _is_digit(s, i):
        n = n * 10 + s[i] - 0x30
        i += 1
    if i == 0 or (fixed and i != 3):
        raise _Bad
    return n, s[i:]


def _lookup(tab: list[str], val: bytes) -> tuple[int, bytes]:
    for i, name in enumerate(tab):
        v = name.encode()
        if len(val) >= len(v) and _match(val[: len(v)], v):
            return i, val[len(v) :]
    raise _Bad


def _match(s1: bytes, s2: bytes) -> bool:
    for c1, c2 in zip(s1, s2, strict=True):
        if c1 != c2:
            c1 |= 0x20
            c2 |= 0x20
            if c1 != c2 or not 0x61 <= c1 <= 0x7A:
                return False
    return True


def _skip(value: bytes, prefix: bytes) -> bytes:
    while prefix:
        if prefix[0] == 0x20:
            if value and value[0] != 0x20:
                raise _Bad
            prefix = prefix.lstrip(b" ")
            value = value.lstrip(b" ")
            continue
        if not value or value[0] != prefix[0]:
            raise _Bad
        prefix, value = prefix[1:], value[1:]
    return value


def _signed_offset(value: bytes) -> int:
    if value[:1] not in (b"-", b"+"):
        return 0
    try:
        x, rem = _leading_int(value[1:])
    except _Bad:
        return 0
    if value[1:] == rem:
        return 0
    if value[:1] == b"-":
        x = -x
    if x < -23 or x > 23:
        return 0
    return len(value) - len(rem)


def _time_zone(value: bytes) -> int:
    """Go's parseTimeZone: the length of the zone abbreviation at the start, or 0."""
    if len(value) < 3:
        return 0
    if value[:4] in (b"ChST", b"MeST"):
        return 4
    if value[:3] == b"GMT":
        return 3 + (_signed_offset(value[3:]) if len(value) > 3 else 0)
    if value[:1] in (b"+", b"-"):
        return _signed_offset(value)
    upper = 0
    while upper < 6 and upper < len(value) and 0x41 <= value[upper] <= 0x5A:
        upper += 1
    if upper == 5 and value[4:5] == b"T":
        return 5
    if upper == 4 and (value[3:4] == b"T" or value[:4] == b"WITA"):
        return 4
    if upper == 3:
        return 3
    return 0


def _nanoseconds(value: bytes, nbytes: int) -> tuple[int, str]:
    if value[:1] != b".":
        raise _Bad
    ns = _atoi(value[1:nbytes])
    if ns < 0 or ns >= 1_000_000_000:
        return ns, "fractional second"
    for _ in range(10 - nbytes):
        ns *= 10
    return ns, ""


def _is_leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def _days_in(month: int, year: int) -> int:
    if month == 2 and _is_leap(year):
        return 29
    return _DAYS_BEFORE[month] - _DAYS_BEFORE[month - 1]


def _days_from_civil(y: int, m: int, d: int) -> int:
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def go_parse(layout_s: str, value_s: str) -> tuple[int, int]:
    """Go's time.Parse(layout, value): (Unix seconds, nanoseconds) of the instant."""
    layout, value = layout_s.encode(), value_s.encode()

    def error(value_elem: bytes, layout_elem: bytes, message: str = "") -> TimeParseError:
        head = f'parsing time "{value_s}"'
        if message:
            return TimeParseError(head + message)
        return TimeParseError(
            f'{head} as "{layout_s}": cannot parse "{_text(value_elem)}" as "{_text(layout_elem)}"'
        )

    year, month, day, yday = 0, -1, -1, -1
    hour = minute = sec = nsec = 0
    utc = False
    zone_offset = -1
    am = pm = False
    while True:
        prefix, std, ndigit, suffix = next_chunk(layout)
        stdstr = layout[len(prefix) : len(layout) - len(suffix)]
        try:
            value = _skip(value, prefix)
        except _Bad:
            raise error(value, prefix) from None
        if std is None:
            if value:
                raise error(b"", b"", ": extra text: " + _text(value))
            break
        layout = suffix
        range_err = ""
        try:
            if std == YEAR:
                if len(value) < 2:
                    raise _Bad
                year = _atoi(value[:2])
                value = value[2:]
                year += 1900 if year >= 69 else 2000
            elif std == LONG_YEAR:
                if len(value) < 4 or not _is_digit(value, 0):
                    raise _Bad
                year = _atoi(value[:4])
                value = value[4:]
            elif std in (MONTH, LONG_MONTH):
                month, value = _lookup(_SHORT_MONTHS if std == MONTH else _LONG_MONTHS, value)
                month += 1
            elif std in (NUM_MONTH, ZERO_MONTH):
                month, value = _getnum(value, std == ZERO_MONTH)
                if month <= 0 or month > 12:
                    range_err = "month"
            elif std in (WEEKDAY, LONG_WEEKDAY):
                _, value = _lookup(_SHORT_DAYS if std == WEEKDAY else _LONG_DAYS, value)
            elif std in (DAY, UNDER_DAY, ZERO_DAY):
                if std == UNDER_DAY and value[:1] == b" ":
                    value = value[1:]
                day, value = _getnum(value, std == ZERO_DAY)
            elif std in (UNDER_YDAY, ZERO_YDAY):
                for _ in range(2):
                    if std == UNDER_YDAY and value[:1] == b" ":
                        value = value[1:]
                yday, value = _getnum3(value, std == ZERO_YDAY)
            elif std == HOUR:
                hour, value = _getnum(value, False)
                if hour >= 24:
                    range_err = "hour"
            elif std in (HOUR12, ZERO_HOUR12):
                hour, value = _getnum(value, std == ZERO_HOUR12)
                if hour > 12:
                    range_err = "hour"
            elif std in (MINUTE, ZERO_MINUTE):
                minute, value = _getnum(value, std == ZERO_MINUTE)
                if minute >= 60:
                    range_err = "minute"
            elif std in (SECOND, ZERO_SECOND):
                # Go keeps going after a missing number: a fraction that follows (with
                # none in the layout) then clears the error, so "05" accepts ".3".
                bad = False
                try:
                    sec, value = _getnum(value, std == ZERO_SECOND)
                except _Bad:
                    sec, bad = 0, True
                if sec >= 60:
                    range_err = "second"
                elif len(value) >= 2 and value[:1] == b"." and _is_digit(value, 1):
                    _, nxt, _, _ = next_chunk(layout)
                    if nxt not in (FRAC0, FRAC9):
                        k = 2
                        while k < len(value) and _is_digit(value, k):
                            k += 1
                        bad = False
                        nsec, range_err = _nanoseconds(value, k)
                        value = value[k:]
                if bad:
                    raise _Bad
            elif std in (PM_UPPER, PM_LOWER):
                if len(value) < 2:
                    raise _Bad
                p, value = value[:2], value[2:]
                if p == (b"PM" if std == PM_UPPER else b"pm"):
                    pm = True
                elif p == (b"AM" if std == PM_UPPER else b"am"):
                    am = True
                else:
                    raise _Bad
            elif std == TZ:
                if value[:3] == b"UTC":
                    utc = True
                    value = value[3:]
                else:
                    k = _time_zone(value)
                    if k == 0:
                        raise _Bad
                    value = value[k:]
            elif std == FRAC0:
                if len(value) < 1 + ndigit:
                    raise _Bad
                nsec, range_err = _nanoseconds(value, 1 + ndigit)
                value = value[1 + ndigit :]
            elif std == FRAC9:
                if len(value) >= 2 and value[:1] == b"." and _is_digit(value, 1):
                    k = 0
                    while k < 9 and k + 1 < len(value) and _is_digit(value, k + 1):
                        k += 1
                    nsec, range_err = _nanoseconds(value, 1 + k)
                    value = value[1 + k :]
            else:  # the numeric zone offsets
                if std in (ISO_TZ, ISO_SHORT_TZ, ISO_COLON_TZ) and value[:1] == b"Z":
                    value = value[1:]
                    utc = True
                else:
                    zone_offset, value = _offset(std, value)
        except _Bad:
            raise error(value, stdstr) from None
        if range_err:
            raise error(b"", b"", f": {range_err} out of range")
    if pm and hour < 12:
        hour += 12
    elif am and hour == 12:
        hour = 0
    if yday >= 0:
        m = d = 0
        if _is_leap(year):
            if yday == 31 + 29:
                m, d = 2, 29
            elif yday > 31 + 29:
                yday -= 1
        if yday < 1 or yday > 365:
            raise error(b"", b"", ": day-of-year out of range")
        if m == 0:
            m = (yday - 1) // 31 + 1
            if _DAYS_BEFORE[m] < yday:
                m += 1
            d = yday - _DAYS_BEFORE[m - 1]
        if month >= 0 and month != m:
            raise error(b"", b"", ": day-of-year does not match month")
        month = m
        if day >= 0 and day != d:
            raise error(b"", b"", ": day-of-year does not match day")
        day = d
    else:
        month = 1 if month < 0 else month
        day = 1 if day < 0 else day
    if day < 1 or day > _days_in(month, year):
        raise error(b"", b"", ": day out of range")
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + sec
    if not utc and zone_offset != -1:
        seconds -= zone_offset
    return seconds, nsec


def _offset(std: str, value: bytes) -> tuple[int, bytes]:
    if std in (ISO_COLON_TZ, NUM_COLON_TZ):
        if len(value) < 6 or value[3:4] != b":":
            raise _Bad
        sign, hh, mm, ss, value = value[:1], value[1:3], value[4:6], b"00", value[6:]
    elif std in (NUM_SHORT_TZ, ISO_SHORT_TZ):
        if len(value) < 3:
            raise _Bad
        sign, hh, mm, ss, value = value[:1], value[1:3], b"00", b"00", value[3:]
    elif std in (ISO_COLON_SECONDS_TZ, NUM_COLON_SECONDS_TZ):
        if len(value) < 9 or value[3:4] != b":" or value[6:7] != b":":
            raise _Bad
        sign, hh, mm, ss, value = value[:1], value[1:3], value[4:6], value[7:9], value[9:]
    elif std in (ISO_SECONDS_TZ, NUM_SECONDS_TZ):
        if len(value) < 7:
            raise _Bad
        sign, hh, mm, ss, value = value[:1], value[1:3], value[3:5], value[5:7], value[7:]
    else:
        if len(value) < 5:
            raise _Bad
        sign, hh, mm, ss, value = value[:1], value[1:3], value[3:5], b"00", value[5:]
    offset = (_atoi(hh) * 60 + _atoi(mm)) * 60 + _atoi(ss)
    if sign == b"-":
        offset = -offset
    elif sign != b"+":
        raise _Bad
    return offset, value


__all__ = ["TimeParseError", "go_parse", "next_chunk"]
