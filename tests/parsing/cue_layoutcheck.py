"""Random and edge layouts and values given to ``time.Parse``, ``time.Format`` and
``time.Time`` (Go's reference-time layout language), evaluated by the built-in evaluator and
by the real CUE v0.4, and compared. A call that fails is written ``*call | "ERR"`` so that
failures are compared too, all in one file.

    python tests/parsing/cue_layoutcheck.py --seed 1 --count 500   # needs Node and npm
"""

from __future__ import annotations

import json
import random
import sys

import cue_checkkit as checkkit

MONTHS = "January February March April May June July August September October November December"
DAYS = "Sunday Monday Tuesday Wednesday Thursday Friday Saturday"
ZONES = ["UTC", "MST", "PST", "CEST", "GMT", "GMT+3", "GMT-14", "GMT+0", "+03", "-0530", "ChST"]
ZONES += ["WITA", "ABCDE", "ABCDT", "AB", "utc", "GMT+24", "-24", "+12", "ESTX"]
PREDEFINED = [
    "Mon Jan _2 15:04:05 2006",
    "Mon Jan _2 15:04:05 MST 2006",
    "Mon Jan 02 15:04:05 -0700 2006",
    "02 Jan 06 15:04 MST",
    "02 Jan 06 15:04 -0700",
    "Monday, 02-Jan-06 15:04:05 MST",
    "Mon, 02 Jan 2006 15:04:05 MST",
    "Mon, 02 Jan 2006 15:04:05 -0700",
    "2006-01-02T15:04:05Z07:00",
    "2006-01-02T15:04:05.999999999Z07:00",
    "2006-01-02",
    "3:04PM",
    "15:04",
]
ELEMENTS = [
    "2006", "06", "01", "1", "Jan", "January", "02", "2", "_2", "002", "__2", "15", "3",
    "03", "04", "4", "05", "5", "PM", "pm", "Mon", "Monday", "MST", "Z07:00", "-07:00",
    "-0700", "Z0700", "-07", "Z07", "-07:00:00", "Z07:00:00", "-070000", "Z070000", ".000",
    ".999999999", ".0", ".99", ".000000000000", "_2006",
]  # fmt: skip
EDGES = [
    ("2006-01-02T15:04:05Z07:00:00", "2000-01-01T00:00:00-00:00:01"),
    ("-07:00:00", "-00:00:01"),
    ("-07:00:00", "+00:00:01"),
    ("Z07", "+1x"),
    ("-07", "+-1"),
    ("-0700", "+0-30"),
    ("-07:00", "+01-00"),
    ("Z0700", "z"),
    ("Z07:00 MST", "Z PST"),
    ("MST -0700", "PST -0800"),
    ("MST", "GMT+3"),
    ("MST", "GMT+24"),
    ("MST", "GMT+"),
    ("MST", "GMT-0"),
    ("MST", "GMT+12x"),
    ("MST", "+0"),
    ("MST", "-"),
    ("MST", "-24"),
    ("MST", "+23"),
    ("MST", "ChST"),
    ("MST", "WITA"),
    ("MST", "ABCDEF"),
    ("MST", "ABCD"),
    ("MST", "UTCX"),
    ("__2 2006", "366 2020"),
    ("__2 2006", "366 2021"),
    ("002 2006", "060 2020"),
    ("002 2006", "061 2020"),
    ("002 01 2006", "060 03 2021"),
    ("002 02 2006", "060 01 2021"),
    ("2006 002", "2020 000"),
    ("002", "  1"),
    ("__2", "  1"),
    ("__2", " 1"),
    ("__2", "1"),
    ("002", "1"),
    ("06", "+5"),
    ("06", "-5"),
    ("2006", "-001"),
    ("2006", "+999"),
    (".000", ".+12"),
    (".000", ".-12"),
    ("05.000", "05.1234"),
    ("05", "05.1234567890123"),
    ("05", "05.12345678901234567890"),
    ("05", "05.999999999"),
    ("05", "05.9999999999"),
    ("05.999", "05"),
    ("05.999", "05."),
    ("05.999", "05.1234567891"),
    ("05,000", "05,123"),
    ("05", ".5"),
    ("05 .000", ".5 .123"),
    ("3PM", "12AM"),
    ("3PM", "12PM"),
    ("3pm", "0pm"),
    ("15PM", "13PM"),
    ("03PM", "1PM"),
    ("Jan", "jAN"),
    ("January", "Janu"),
    ("Mon", "Thu"),
    ("Janx", "Janx"),
    ("Monx", "Monx"),
    ("2006-01-02", "2019-02-29"),
    ("2006-01-02", "2020-02-29"),
    ("2006-01-02", "2100-02-29"),
    ("2006-01-02", "2020-04-31"),
    ("2006-01-02T15:04:05Z07:00", "9999-12-31T23:59:59-01:00"),
    ("2006-01-02T15:04:05Z07:00", "0000-01-01T00:00:00+01:00"),
    ("2006-01-02T15:04:05Z07:00", "0000-01-01T00:00:00+99:59"),
    ("", ""),
    ("", "x"),
    ("x", ""),
    ("  ", " "),
    (" 2006", "2006"),
    (" 2006", "   2006"),
    ("2006 ", "2006"),
    ("\u00e92006", "\u00e92020"),
    ("2006", "\uff12\uff10\uff12\uff10"),
    ("_2006", "_2020"),
    ("_2", "_2"),
    ("1/2", "13/1"),
    ("1/2", "0/1"),
    ("15:04", "24:00"),
    ("15:04", "23:60"),
    ("15:04:05", "23:59:60"),
    ("15:04:05", "1:2:3"),
    ("15:04:05", "1:2:3.4"),
]
SEPARATORS = ["-", ":", " ", "T", "/", ",", "  ", "x", "", "", ".", " at ", "Z", "é"]


def _rand_offset(rng: random.Random) -> int:
    return rng.choice((0, 0, 3600, -3600, 19800, -34200, 50400, -43200, 1, -1, 45296, -86399))


def _element_text(el: str, t: dict[str, int], rng: random.Random) -> str:
    y, mo, d, h = t["y"], t["mo"], t["d"], t["h"]
    h12 = h % 12 or 12
    off = t["off"]
    sign = "-" if off < 0 else "+"
    oh, rem = divmod(abs(off), 3600)
    om, os_ = divmod(rem, 60)
    month = MONTHS.split()[(mo - 1) % 12]
    day = DAYS.split()[d % 7]
    if rng.random() < 0.1:
        month, day = month.upper(), day.lower()
    tz = {
        "-07": f"{sign}{oh:02d}",
        "-0700": f"{sign}{oh:02d}{om:02d}",
        "-07:00": f"{sign}{oh:02d}:{om:02d}",
        "-070000": f"{sign}{oh:02d}{om:02d}{os_:02d}",
        "-07:00:00": f"{sign}{oh:02d}:{om:02d}:{os_:02d}",
    }
    if el.startswith("Z"):
        return "Z" if off == 0 and rng.random() < 0.7 else tz["-" + el[1:]]
    if el in tz:
        return tz[el]
    if el.startswith("."):
        ns = f"{t['ns']:09d}"
        if el[1] == "0":
            return "." + (ns + "000")[: len(el) - 1]
        return ("." + ns[: len(el) - 1]).rstrip("0").rstrip(".")
    return {
        "2006": f"{y:04d}",
        "_2006": f"_{y:04d}",
        "06": f"{y % 100:02d}",
        "01": f"{mo:02d}",
        "1": str(mo),
        "Jan": month[:3],
        "January": month,
        "02": f"{d:02d}",
        "2": str(d),
        "_2": f"{d:2d}",
        "002": f"{t['yd']:03d}",
        "__2": f"{t['yd']:3d}",
        "15": f"{h:02d}",
        "3": str(h12),
        "03": f"{h12:02d}",
        "04": f"{t['mi']:02d}",
        "4": str(t["mi"]),
        "05": f"{t['s']:02d}",
        "5": str(t["s"]),
        "PM": "PM" if h >= 12 else "AM",
        "pm": "pm" if h >= 12 else "am",
        "Mon": day[:3],
        "Monday": day,
        "MST": rng.choice(ZONES),
    }[el]


def _rand_time(rng: random.Random) -> dict[str, int]:
    wild = rng.random() < 0.15
    yd = rng.randrange(0, 368) if wild else rng.randrange(1, 366)
    return {
        "y": rng.choice((0, 1, 69, 1999, 2000, 2020, 2024, 2100, 9999, rng.randrange(10000))),
        "mo": rng.randrange(0, 14) if wild else rng.randrange(1, 13),
        "d": rng.randrange(0, 33)
        if wild
        else rng.choice((1, 28, 29, 30, 31, rng.randrange(1, 32))),
        "h": rng.randrange(0, 25) if wild else rng.randrange(24),
        "mi": rng.randrange(0, 61) if wild else rng.randrange(60),
        "s": rng.randrange(0, 61) if wild else rng.randrange(60),
        "ns": rng.choice((0, 1, 500000000, 999999999, 120000, rng.randrange(10**9))),
        "yd": yd,
        "off": _rand_offset(rng),
    }


def _mutate(s: str, rng: random.Random) -> str:
    k = rng.randrange(5)
    i = rng.randrange(len(s) + 1)
    if k == 0:
        return s[:i] + s[i + 1 :]
    if k == 1:
        return s[:i] + rng.choice("0123456789 .:-+Z_aAPMé") + s[i:]
    if k == 2:
        return s[:i] + rng.choice("0123456789 ") + s[i + 1 :]
    if k == 3:
        return s + rng.choice(("", " ", "0", ".5", "Z", "x"))
    return s.upper() if rng.random() < 0.5 else s.lower()


def _rand_layout_value(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.25:
        parts = [rng.choice(PREDEFINED)]
    else:
        parts = []
        for _ in range(rng.randrange(1, 7)):
            parts.append(rng.choice(ELEMENTS))
            parts.append(rng.choice(SEPARATORS))
    layout = "".join(parts)
    t = _rand_time(rng)
    from zetta_utils.parsing.cue._gotime import next_chunk

    out, rest = [], layout.encode()
    while True:
        prefix, std, ndigit, rest = next_chunk(rest)
        out.append(prefix.decode("utf-8", "replace"))
        if std is None:
            break
        el = std if not std.startswith(".") else std[0] + std[1] * ndigit
        out.append(_element_text(el, t, rng))
    value = "".join(out)
    if rng.random() < 0.3:
        value = _mutate(value, rng)
    return layout, value


def _rfc3339(rng: random.Random) -> str:
    t = _rand_time(rng)
    els = ["2006", "-", "01", "-", "02", "T", "15", ":", "04", ":", "05"]
    els += [rng.choice(("", ".999999999", ".000")), rng.choice(("Z07:00", "-07:00", "Z"))]
    text = "".join(e if e in ("-", "T", ":", "Z", "") else _element_text(e, t, rng) for e in els)
    return _mutate(text, rng) if rng.random() < 0.3 else text


def _q(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def programs(seed: int, count: int) -> dict[str, str]:
    rng = random.Random(seed)
    out: dict[str, str] = {}
    edges = ['import "time"']
    for k, (layout, value) in enumerate(EDGES):
        layout, value = (
            layout.encode().decode("unicode_escape"),
            value.encode().decode("unicode_escape"),
        )
        edges.append(f'e{k}: *time.Parse({_q(layout)}, {_q(value)}) | "ERR"')
        edges.append(f'f{k}: *time.Format({_q(value)}, {_q(layout)}) | "ERR"')
    out["Edges"] = "\n".join(edges) + "\n"
    for name in ("Parse", "Format", "Time"):
        lines = ['import "time"']
        for k in range(count):
            layout, value = _rand_layout_value(rng)
            if name == "Parse":
                call = f"time.Parse({_q(layout)}, {_q(value)})"
            elif name == "Format":
                call = f"time.Format({_q(value)}, {_q(layout)})"
            else:
                value = _rfc3339(rng) if rng.random() < 0.8 else _rand_layout_value(rng)[1]
                call = f"time.Time({_q(value)})"
            lines.append(f'v{k}: *{call} | "ERR"')
        out[name] = "\n".join(lines) + "\n"
    return out


def main(argv: list[str]) -> int:
    return checkkit.main(__doc__, argv, programs, "time.")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
