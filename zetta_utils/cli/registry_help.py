"""What ``zetta show-registry`` prints: each ``"@type"`` with its one-line description and
argument names, or one type in full (signature, each argument's default and doc).

Argument docs come from the docstring's parameter section, in any of the three common styles
(``:param name: text``, Google ``Args:``, NumPy ``Parameters`` with dashes), and for classes
also from the attribute docstrings of the class body (attrs and dataclass fields).
"""

from __future__ import annotations

import ast
import difflib
import inspect
import itertools
import re
import textwrap
from collections.abc import Callable, Iterable
from typing import Any

import attrs

__all__ = [
    "ArgumentHelp",
    "argument_docs",
    "close_names",
    "describe_entry",
    "list_line",
    "one_line",
    "signature_line",
]

_MAX_SUMMARY = 110
_KIND_MARKS: dict[Any, str] = {
    inspect.Parameter.VAR_POSITIONAL: "*",
    inspect.Parameter.VAR_KEYWORD: "**",
}


@attrs.frozen
class ArgumentHelp:
    name: str
    kind: str  # "", "*", "**" (for *args, **kwargs)
    annotation: str  # "" when none
    default: str | None  # None: required
    doc: str  # "" when undocumented


def _doc(fn: Callable[..., Any]) -> str:
    return inspect.cleandoc(getattr(fn, "__doc__", None) or "")


def _plain(text: str) -> str:
    """Docstring markup out of the way: ``x`` and :func:`x` read as `x`."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def one_line(fn: Callable[..., Any]) -> str:
    """The docstring's first sentence (of its first paragraph), on one line, shortened to
    about 110 characters."""
    doc = _doc(fn)
    if not doc:
        return "(no description)"
    paragraph = " ".join(doc.split("\n\n", 1)[0].split())
    text = _plain(paragraph)
    cut = re.search(r"(?<=[.!?])\s+(?=[A-Z(`])", text)
    if cut is not None and cut.start() >= 20:
        text = text[: cut.start()]
    if len(text) > _MAX_SUMMARY:
        text = text[: _MAX_SUMMARY - 3].rsplit(" ", 1)[0] + "..."
    return text


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def signature_line(fn: Callable[..., Any]) -> str:
    """``(a: 'int', b=1) -> 'X'``, or ``(...)`` when Python cannot tell."""
    sig = _signature(fn)
    return str(sig) if sig is not None else "(...)"


def _annotation_text(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, str):
        return annotation
    return inspect.formatannotation(annotation)


def _section_params(doc: str) -> dict[str, str]:
    """Argument docs of a Google (``Args:``) or NumPy (``Parameters`` + dashes) section."""
    found: dict[str, str] = {}
    lines = doc.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        google = line in (
            "Args:",
            "Arguments:",
            "Parameters:",
            "Keyword Args:",
            "Keyword Arguments:",
        )
        numpy = (
            line in ("Parameters", "Other Parameters")
            and i + 1 < len(lines)
            and set(lines[i + 1].strip()) == {"-"}
        )
        if not (google or numpy):
            i += 1
            continue
        i += 2 if numpy else 1
        base: int | None = None
        name: str | None = None
        while i < len(lines):
            raw = lines[i]
            if not raw.strip():
                i += 1
                if (
                    numpy
                    and i < len(lines)
                    and lines[i].strip()
                    and i + 1 < len(lines)
                    and set(lines[i + 1].strip()) == {"-"}
                ):
                    break
                continue
            indent = len(raw) - len(raw.lstrip())
            if base is None:
                base = indent
            if indent < base or (google and indent == 0 and raw.strip().endswith(":")):
                break
            if indent == base:
                head = raw.strip()
                if numpy:
                    name, text = head.split(":", 1)[0].strip(), ""
                else:
                    m = re.match(r"\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)", head)
                    if m is None:
                        break
                    name, text = m.group(1), m.group(2)
                found[name.lstrip("*")] = text
            elif name is not None:
                key = name.lstrip("*")
                found[key] = (found[key] + " " + raw.strip()).strip()
            i += 1
    return found


def _sphinx_params(doc: str) -> dict[str, str]:
    """``:param name: text`` (and ``:param type name:``), continuation lines indented."""
    found: dict[str, str] = {}
    name: str | None = None
    for raw in doc.splitlines():
        m = re.match(r"\s*:param\s+(?:[^:]*\s)?\*{0,2}(\w+):\s*(.*)", raw)
        if m is not None:
            name = m.group(1)
            found[name] = m.group(2).strip()
            continue
        if name is not None and raw.startswith((" ", "\t")) and raw.strip():
            found[name] += " " + raw.strip()
        else:
            name = None
    return found


def _attribute_docs(cls: type) -> dict[str, str]:
    """Docstrings written under the fields of a class body (``x: int = 0`` then
    ``\"\"\"...\"\"\"``)."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
            tree = ast.parse(source)
        except (OSError, TypeError, SyntaxError):
            continue
        body = next((n.body for n in tree.body if isinstance(n, ast.ClassDef)), [])
        for node, after in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                found[node.target.id] = " ".join(after.value.value.split())
    return found


def argument_docs(fn: Callable[..., Any]) -> dict[str, str]:
    """Each documented argument's doc, on one line."""
    doc = _doc(fn)
    found: dict[str, str] = {}
    if isinstance(fn, type):
        found.update(_attribute_docs(fn))
        doc = doc or inspect.cleandoc(getattr(fn.__init__, "__doc__", None) or "")  # type: ignore[misc]
    found.update(_section_params(doc))
    found.update(_sphinx_params(doc))
    return {k: _plain(" ".join(v.split())) for k, v in found.items()}


def arguments(fn: Callable[..., Any]) -> list[ArgumentHelp] | None:
    """The arguments a spec can give, with annotation, default and doc (None: unknown)."""
    sig = _signature(fn)
    if sig is None:
        return None
    docs = argument_docs(fn)
    result = []
    for p in sig.parameters.values():
        kind = _KIND_MARKS.get(p.kind, "")
        default = None if p.default is inspect.Parameter.empty else repr(p.default)
        result.append(
            ArgumentHelp(
                p.name, kind, _annotation_text(p.annotation), default, docs.get(p.name, "")
            )
        )
    return result


def _versions(entry: Any) -> str:
    return f" [{entry.versions}]" if str(entry.versions) else ""


def list_line(name: str, entry: Any) -> list[str]:
    """Two lines for the listing: the name and description, then the argument names."""
    args = arguments(entry.fn)
    if args is None:
        names = "(arguments unknown)"
    else:
        names = ", ".join(a.kind + a.name for a in args) or "(no arguments)"
    return [
        f"{name}{_versions(entry)}  {one_line(entry.fn)}",
        textwrap.indent(_wrap(names), "    "),
    ]


def _wrap(text: str, width: int = 96) -> str:
    return "\n".join(textwrap.wrap(text, width=width, break_on_hyphens=False)) or text


def describe_entry(name: str, entry: Any) -> str:
    """The full help of one registration: description, signature, each argument."""
    fn = entry.fn
    lines = [f"{name}{_versions(entry)}"]
    doc = _doc(fn)
    intro = _plain(doc.split("\n\n", 1)[0]) if doc else "(no description)"
    lines.append(textwrap.indent(_wrap(" ".join(intro.split())), "  "))
    lines.append("")
    lines.append(f"  {name}{signature_line(fn)}")
    args = arguments(fn)
    if args:
        lines.append("")
        lines.append("  Arguments:")
        for a in args:
            head = f"    {a.kind}{a.name}"
            if a.annotation:
                head += f": {a.annotation}"
            if not a.kind:  # *args and **kwargs are neither required nor defaulted
                head += "  (required)" if a.default is None else f" = {a.default}"
            lines.append(head)
            if a.doc:
                lines.append(textwrap.indent(_wrap(a.doc, 92), "        "))
    return "\n".join(lines)


def close_names(pattern: str, names: Iterable[str], n: int = 5) -> list[str]:
    """Registered names that look like ``pattern`` (for "nothing matches")."""
    by_lower = {name.lower(): name for name in names}
    return [
        by_lower[m]
        for m in difflib.get_close_matches(pattern.lower(), list(by_lower), n=n, cutoff=0.6)
    ]
