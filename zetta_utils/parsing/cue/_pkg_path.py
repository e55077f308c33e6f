"""The ``path`` package of CUE v0.4 for slash-separated (Unix and Plan 9) paths: Go's
``path/filepath`` semantics. Most functions take the operating system as an optional
last argument (``SplitList``, ``ToSlash`` and ``FromSlash`` require it); Windows
paths are not supported by the built-in evaluator."""

from __future__ import annotations

from collections.abc import Callable

from ._builtins import Builtin, Call, functions
from ._errors import unsupported

_OS_NAMES = frozenset(
    "unix windows plan9 aix android darwin dragonfly freebsd hurd illumos ios js linux nacl "
    "netbsd openbsd solaris zos".split()
)


def _check_os(c: Call, i: int) -> None:
    if not c.has(i):
        return
    os = c.string(i)
    if os not in _OS_NAMES:
        raise c.fail(f"unknown operating system {os!r}")
    if os == "windows":
        raise unsupported(c.pos, "path functions with Windows paths (path.Windows)")


def clean(p: str) -> str:
    """Go's filepath.Clean for slash-separated paths."""
    if p == "":
        return "."
    rooted = p.startswith("/")
    parts: list[str] = []
    for seg in p.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(seg)
    out = "/".join(parts)
    if rooted:
        out = "/" + out
    return out or "."


def base(p: str) -> str:
    if p == "":
        return "."
    p = p.rstrip("/")
    if p == "":
        return "/"
    return p[p.rfind("/") + 1 :]


def dir_(p: str) -> str:
    return clean(p[: p.rfind("/") + 1])


def ext(p: str) -> str:
    for i in range(len(p) - 1, -1, -1):
        if p[i] == "/":
            break
        if p[i] == ".":
            return p[i:]
    return ""


def join(elems: list[str]) -> str:
    parts = [e for e in elems if e]
    return clean("/".join(parts)) if parts else ""


def rel(basepath: str, targpath: str) -> str:
    """Go's filepath.Rel (raises ValueError when impossible)."""
    b, t = clean(basepath), clean(targpath)
    if t == b:
        return "."
    if b == ".":
        b = ""
    if b.startswith("/") != t.startswith("/"):
        raise ValueError(f"Rel: can't make {targpath} relative to {basepath}")
    bl, tl = len(b), len(t)
    b0 = bi = t0 = ti = 0
    while True:
        while bi < bl and b[bi] != "/":
            bi += 1
        while ti < tl and t[ti] != "/":
            ti += 1
        if t[t0:ti] != b[b0:bi]:
            break
        if bi < bl:
            bi += 1
        if ti < tl:
            ti += 1
        b0, t0 = bi, ti
    if b[b0:bi] == "..":
        raise ValueError(f"Rel: can't make {targpath} relative to {basepath}")
    if b0 != bl:
        out = ".." + "/.." * b[b0:bl].count("/")
        if t0 != tl:
            out += "/" + t[t0:]
        return out
    return t[t0:]


def _path_funcs() -> dict[str, Builtin]:
    def one(name: str, f: Callable[[str], object], os_required: bool = False) -> Builtin:
        def g(c: Call) -> object:
            _check_os(c, 1)
            return f(c.string(0))

        return Builtin("path." + name, (2, 2) if os_required else (1, 2), g)

    def join_(c: Call) -> object:
        _check_os(c, 1)
        return join(c.strings(0))

    def rel_(c: Call) -> object:
        _check_os(c, 2)
        try:
            return rel(c.string(0), c.string(1))
        except ValueError as e:
            raise c.fail(str(e)) from None

    def resolve(c: Call) -> object:
        _check_os(c, 2)
        d, sub = c.string(0), c.string(1)
        if sub.startswith("/"):
            return clean(sub)
        return join([clean(d), sub])

    def match(c: Call) -> object:
        # CUE v0.4 declares an operating system argument for Match but accepts only
        # two arguments, so that no call of it succeeds.
        raise c.fail(
            "path.Match cannot be called in CUE v0.4 (its arguments are inconsistent)", arg=1
        )

    fs = [
        Builtin("path.Join", (1, 2), join_),
        one("Base", base),
        one("Dir", dir_),
        one("Ext", ext),
        one("Clean", clean),
        one("IsAbs", lambda p: p.startswith("/")),
        one("Split", lambda p: [p[: p.rfind("/") + 1], p[p.rfind("/") + 1 :]]),
        Builtin("path.Rel", (2, 3), rel_),
        Builtin("path.Resolve", (2, 3), resolve),
        Builtin("path.Match", (2, 3), match),
        one("SplitList", lambda p: p.split(":") if p else [], os_required=True),
        one("ToSlash", lambda p: p, os_required=True),
        one("FromSlash", lambda p: p, os_required=True),
        one("VolumeName", lambda p: ""),
    ]
    return functions("path", fs)


PACKAGES: dict[str, dict[str, object]] = {
    "path": {**_path_funcs(), "Unix": "unix", "Windows": "windows", "Plan9": "plan9"},
}
