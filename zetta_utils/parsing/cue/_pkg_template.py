"""The escaping functions of CUE v0.4's ``text/template`` package (Go's
``template.HTMLEscapeString`` and ``template.JSEscapeString``). ``Execute`` (Go's
template language) is not implemented and stays unsupported."""

from __future__ import annotations

from ._builtins import Builtin, functions
from ._pkg_text import _is_print

_HTML = {'"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\0": "\ufffd"}
_JS = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "<": "\\u003C",
    ">": "\\u003E",
    "&": "\\u0026",
    "=": "\\u003D",
}


def html_escape(s: str) -> str:
    """Go's template.HTMLEscapeString: the five HTML specials as entities, NUL as U+FFFD."""
    return "".join(_HTML.get(ch, ch) for ch in s)


def js_escape(s: str) -> str:
    """Go's template.JSEscapeString: quotes and backslash escaped with a backslash,
    ``<>&=`` and ASCII control characters as upper-case ``\\u00XX``, non-ASCII runes
    kept when Go's unicode.IsPrint holds for them, else ``\\uXXXX``."""
    out: list[str] = []
    for ch in s:
        o = ord(ch)
        if ch in _JS:
            out.append(_JS[ch])
        elif o < 0x20:
            out.append(f"\\u00{o:02X}")
        elif o < 0x80 or _is_print(ch):
            out.append(ch)
        else:
            out.append(f"\\u{o:04X}")
    return "".join(out)


def _template_funcs() -> dict[str, Builtin]:
    fs = [
        Builtin("template.HTMLEscape", 1, lambda c: html_escape(c.string(0))),
        Builtin("template.JSEscape", 1, lambda c: js_escape(c.string(0))),
    ]
    return functions("text/template", fs)


PACKAGES: dict[str, dict[str, object]] = {"text/template": dict(_template_funcs())}

__all__ = ["PACKAGES", "html_escape", "js_escape"]
