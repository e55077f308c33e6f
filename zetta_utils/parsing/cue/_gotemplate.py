"""Go's ``text/template`` as CUE v0.4's ``template.Execute`` runs it: the Go 1.15 that
built the WebAssembly CUE (no newlines inside actions, ``and``/``or`` evaluate all their
arguments, no ``break``/``continue``, template calls nest at most 1000 deep as on wasm),
with the default function set and no custom functions.

:func:`parse` turns a template text into trees (lexer and parser ported from Go's
``text/template/parse``); :func:`execute` runs the main tree over a Go value (see
``_gofmt`` for how Go values are represented). Go's errors are :class:`GoError` with
Go's wording; corners not reproduced raise ``GoUnsupported``.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._gofmt import (
    BigInt,
    GoUnsupported,
    Uint8,
    bytes_text,
    sprint,
    sprintf,
    sprintln,
    type_name,
)
from ._pkg_text import _is_print, _parse_float, _parse_int, _quote


class GoError(Exception):
    """An error Go's text/template reports (parse or execution)."""


MAX_EXEC_DEPTH = 1000  # Go's limit on wasm (100000 elsewhere)

# ====================================================================== lexer
KEYWORDS = {
    ".": "dot",
    "block": "block",
    "define": "define",
    "else": "else",
    "end": "end",
    "if": "if",
    "range": "range",
    "nil": "nil",
    "template": "template",
    "with": "with",
}
_KEYWORD_KINDS = frozenset(KEYWORDS.values())


@dataclass
class Item:
    typ: str
    pos: int
    val: str
    line: int

    def __str__(self) -> str:
        if self.typ == "eof":
            return "EOF"
        if self.typ == "error":
            return self.val
        if self.typ in _KEYWORD_KINDS:
            return f"<{self.val}>"
        if len(self.val.encode()) > 10:
            return _go_quote(self.val[:10]) + "..."
        return _go_quote(self.val)


def _go_quote(s: str) -> str:
    return _quote(s, '"', _is_print, False)


def _sharp_u(ch: str) -> str:
    """Go's %#U of a rune."""
    text = f"U+{ord(ch):04X}"
    return f"{text} '{ch}'" if _is_print(ch) else text


def _is_alnum(ch: str) -> bool:
    return ch != "" and (ch == "_" or ch.isalpha() or unicodedata.category(ch) == "Nd")


def _is_space(ch: str) -> bool:
    return ch in (" ", "\t")


_SPACE_CHARS = " \t\r\n"


class _Lexer:
    """Go 1.15's template lexer, run to the end (or its first error) at once."""

    def __init__(self, text: str) -> None:
        self.input = text
        self.pos = 0
        self.start = 0
        self.paren_depth = 0
        self.items: list[Item] = []

    def emit(self, typ: str) -> None:
        line = 1 + self.input.count("\n", 0, self.start)
        self.items.append(Item(typ, self.start, self.input[self.start : self.pos], line))
        self.start = self.pos

    def error(self, msg: str) -> None:
        line = 1 + self.input.count("\n", 0, self.start)
        self.items.append(Item("error", self.start, msg, line))

    def peek(self) -> str:
        return self.input[self.pos] if self.pos < len(self.input) else ""

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def accept(self, valid: str) -> bool:
        ch = self.peek()
        if ch and ch in valid:
            self.pos += 1
            return True
        return False

    def accept_run(self, valid: str) -> None:
        while self.accept(valid):
            pass

    def at_right_delim(self) -> tuple[bool, bool]:
        if self.input.startswith(" -}}", self.pos):
            return True, True
        return self.input.startswith("}}", self.pos), False

    def at_terminator(self) -> bool:
        ch = self.peek()
        return ch in ("", " ", "\t", "\r", "\n", ".", ",", "|", ":", ")", "(", "}")

    def run(self) -> list[Item]:
        state: Callable[[], Any] | None = self.lex_text
        while state is not None:
            state = state()
        return self.items

    def lex_text(self) -> Callable[[], Any] | None:
        x = self.input.find("{{", self.pos)
        if x < 0:
            self.pos = len(self.input)
            if self.pos > self.start:
                self.emit("text")
            self.emit("eof")
            return None
        self.pos = x
        trim = 0
        if self.input.startswith("- ", x + 2):
            chunk = self.input[self.start : x]
            trim = len(chunk) - len(chunk.rstrip(_SPACE_CHARS))
        self.pos -= trim
        if self.pos > self.start:
            self.emit("text")
        self.pos += trim
        self.start = self.pos
        return self.lex_left_delim

    def lex_left_delim(self) -> Callable[[], Any] | None:
        self.pos += 2
        after = 2 if self.input.startswith("- ", self.pos) else 0
        if self.input.startswith("/*", self.pos + after):
            self.pos += after
            self.start = self.pos
            return self.lex_comment
        self.emit("left")
        self.pos += after
        self.start = self.pos
        self.paren_depth = 0
        return self.lex_inside

    def lex_comment(self) -> Callable[[], Any] | None:
        self.pos += 2
        i = self.input.find("*/", self.pos)
        if i < 0:
            self.error("unclosed comment")
            return None
        self.pos = i + 2
        delim, trim = self.at_right_delim()
        if not delim:
            self.error("comment ends before closing delimiter")
            return None
        self.pos += 4 if trim else 2
        if trim:
            rest = self.input[self.pos :]
            self.pos += len(rest) - len(rest.lstrip(_SPACE_CHARS))
        self.start = self.pos
        return self.lex_text

    def lex_right_delim(self) -> Callable[[], Any] | None:
        trim = self.input.startswith(" -", self.pos)
        if trim:
            self.pos += 2
            self.start = self.pos
        self.pos += 2
        self.emit("right")
        if trim:
            rest = self.input[self.pos :]
            self.pos += len(rest) - len(rest.lstrip(_SPACE_CHARS))
            self.start = self.pos
        return self.lex_text

    def lex_inside(self) -> Callable[[], Any] | None:
        delim, _ = self.at_right_delim()
        if delim:
            if self.paren_depth == 0:
                return self.lex_right_delim
            self.error("unclosed left paren")
            return None
        ch = self.next()
        if ch in ("", "\r", "\n"):
            self.error("unclosed action")
            return None
        if _is_space(ch):
            self.pos -= 1
            return self.lex_space
        if ch == "=":
            self.emit("assign")
        elif ch == ":":
            if self.next() != "=":
                self.error("expected :=")
                return None
            self.emit("declare")
        elif ch == "|":
            self.emit("pipe")
        elif ch == '"':
            return self.lex_quote
        elif ch == "`":
            return self.lex_raw_quote
        elif ch == "$":
            return self.lex_variable
        elif ch == "'":
            return self.lex_char
        elif ch == "." and not ("0" <= self.peek() <= "9" and self.peek() != ""):
            return self.lex_field
        elif ch in "+-." or "0" <= ch <= "9":
            self.pos -= 1
            return self.lex_number
        elif _is_alnum(ch):
            self.pos -= 1
            return self.lex_identifier
        elif ch == "(":
            self.emit("lparen")
            self.paren_depth += 1
        elif ch == ")":
            self.emit("rparen")
            self.paren_depth -= 1
            if self.paren_depth < 0:
                self.error(f"unexpected right paren {_sharp_u(ch)}")
                return None
        elif ord(ch) < 0x80 and ch.isprintable():
            self.emit("char")
        else:
            self.error(f"unrecognized character in action: {_sharp_u(ch)}")
            return None
        return self.lex_inside

    def lex_space(self) -> Callable[[], Any] | None:
        n = 0
        while _is_space(self.peek()):
            self.pos += 1
            n += 1
        if self.input.startswith(" -}}", self.pos - 1):
            self.pos -= 1
            if n == 1:
                return self.lex_right_delim
        self.emit("space")
        return self.lex_inside

    def lex_identifier(self) -> Callable[[], Any] | None:
        while _is_alnum(self.peek()):
            self.pos += 1
        word = self.input[self.start : self.pos]
        if not self.at_terminator():
            self.error(f"bad character {_sharp_u(self.peek())}")
            return None
        if word in KEYWORDS:
            self.emit(KEYWORDS[word])
        elif word in ("true", "false"):
            self.emit("bool")
        else:
            self.emit("identifier")
        return self.lex_inside

    def lex_field(self) -> Callable[[], Any] | None:
        return self.lex_field_or_variable("field")

    def lex_variable(self) -> Callable[[], Any] | None:
        if self.at_terminator():
            self.emit("variable")
            return self.lex_inside
        return self.lex_field_or_variable("variable")

    def lex_field_or_variable(self, typ: str) -> Callable[[], Any] | None:
        if self.at_terminator():
            self.emit("variable" if typ == "variable" else "dot")
            return self.lex_inside
        while _is_alnum(self.peek()):
            self.pos += 1
        if not self.at_terminator():
            self.error(f"bad character {_sharp_u(self.peek())}")
            return None
        self.emit(typ)
        return self.lex_inside

    def lex_char(self) -> Callable[[], Any] | None:
        while True:
            ch = self.next()
            if ch == "\\":
                ch = self.next()
                if ch not in ("", "\n"):
                    continue
            if ch in ("", "\n"):
                self.error("unterminated character constant")
                return None
            if ch == "'":
                break
        self.emit("charconst")
        return self.lex_inside

    def lex_number(self) -> Callable[[], Any] | None:
        if not self.scan_number():
            self.error(f"bad number syntax: {_go_quote(self.input[self.start : self.pos])}")
            return None
        if self.peek() in ("+", "-") and self.peek():
            if not self.scan_number() or self.input[self.pos - 1] != "i":
                self.error(f"bad number syntax: {_go_quote(self.input[self.start : self.pos])}")
                return None
            self.emit("complex")
        else:
            self.emit("number")
        return self.lex_inside

    def scan_number(self) -> bool:
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        if self.peek() and _is_alnum(self.peek()):
            self.pos += 1
            return False
        return True

    def lex_quote(self) -> Callable[[], Any] | None:
        while True:
            ch = self.next()
            if ch == "\\":
                ch = self.next()
                if ch not in ("", "\n"):
                    continue
            if ch in ("", "\n"):
                self.error("unterminated quoted string")
                return None
            if ch == '"':
                break
        self.emit("string")
        return self.lex_inside

    def lex_raw_quote(self) -> Callable[[], Any] | None:
        while True:
            ch = self.next()
            if ch == "":
                self.error("unterminated raw quoted string")
                return None
            if ch == "`":
                break
        self.emit("rawstring")
        return self.lex_inside


# ================================================================ Go unquoting
_SIMPLE_ESCAPES = {
    "a": 7,
    "b": 8,
    "f": 12,
    "n": 10,
    "r": 13,
    "t": 9,
    "v": 11,
    "\\": 92,
}


def _unquote_char(s: str, i: int, quote: str) -> tuple[int, bool, int]:
    """Go's strconv.UnquoteChar at ``s[i]``: (value, is_byte, next index)."""
    ch = s[i]
    if ch == quote and quote in "'\"":
        raise ValueError("invalid syntax")
    if ch != "\\":
        return ord(ch), False, i + 1
    if i + 1 >= len(s):
        raise ValueError("invalid syntax")
    c = s[i + 1]
    i += 2
    if c in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[c], False, i
    if c in "xuU":
        n = {"x": 2, "u": 4, "U": 8}[c]
        hexd = s[i : i + n]
        if len(hexd) < n or not all(h in "0123456789abcdefABCDEF" for h in hexd):
            raise ValueError("invalid syntax")
        v = int(hexd, 16)
        if c == "x":
            return v, True, i + n
        if v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
            raise ValueError("invalid syntax")
        return v, False, i + n
    if "0" <= c <= "7":
        octd = s[i - 1 : i + 2]
        if len(octd) < 3 or not all("0" <= h <= "7" for h in octd):
            raise ValueError("invalid syntax")
        v = int(octd, 8)
        if v > 255:
            raise ValueError("invalid syntax")
        return v, True, i + 2
    if c in "'\"":
        if c != quote:
            raise ValueError("invalid syntax")
        return ord(c), False, i
    raise ValueError("invalid syntax")


def go_unquote(s: str) -> str:
    """Go's strconv.Unquote of a "..." or `...` literal (bytes that are not UTF-8 are
    unsupported)."""
    if len(s) < 2 or s[0] != s[-1] or s[0] not in "\"`'":
        raise ValueError("invalid syntax")
    body = s[1:-1]
    if s[0] == "`":
        if "`" in body:
            raise ValueError("invalid syntax")
        return body.replace("\r", "")
    if s[0] == "'":
        raise ValueError("invalid syntax")
    if "\n" in body:
        raise ValueError("invalid syntax")
    out = bytearray()
    i = 0
    while i < len(body):
        v, is_byte, i = _unquote_char(body, i, '"')
        out += bytes([v]) if is_byte else chr(v).encode("utf-8", "surrogatepass")
    return bytes_text(bytes(out))


# ====================================================================== nodes
@dataclass(eq=False)
class Node:
    pos: int

    def text(self) -> str:
        raise NotImplementedError


@dataclass(eq=False)
class TextNode(Node):
    val: str

    def text(self) -> str:
        return self.val


@dataclass(eq=False)
class ListNode(Node):
    nodes: list[Node] = field(default_factory=list)

    def text(self) -> str:
        return "".join(n.text() for n in self.nodes)


@dataclass(eq=False)
class DotNode(Node):
    def text(self) -> str:
        return "."


@dataclass(eq=False)
class NilNode(Node):
    def text(self) -> str:
        return "nil"


@dataclass(eq=False)
class BoolNode(Node):
    val: bool

    def text(self) -> str:
        return "true" if self.val else "false"


@dataclass(eq=False)
class NumberNode(Node):
    src: str
    value: object  # int or float: Go's ideal constant as the template uses it
    overflow: bool = False

    def text(self) -> str:
        return self.src


@dataclass(eq=False)
class StringNode(Node):
    quoted: str
    val: str

    def text(self) -> str:
        return self.quoted


@dataclass(eq=False)
class IdentifierNode(Node):
    name: str

    def text(self) -> str:
        return self.name


@dataclass(eq=False)
class FieldNode(Node):
    ident: list[str]

    def text(self) -> str:
        return "".join("." + i for i in self.ident)


@dataclass(eq=False)
class VariableNode(Node):
    ident: list[str]

    def text(self) -> str:
        return ".".join(self.ident)


@dataclass(eq=False)
class ChainNode(Node):
    node: Node
    fields: list[str]

    def text(self) -> str:
        inner = self.node.text()
        if isinstance(self.node, PipeNode):
            inner = "(" + inner + ")"
        return inner + "".join("." + f for f in self.fields)


@dataclass(eq=False)
class CommandNode(Node):
    args: list[Node] = field(default_factory=list)

    def text(self) -> str:
        return " ".join(
            "(" + a.text() + ")" if isinstance(a, PipeNode) else a.text() for a in self.args
        )


@dataclass(eq=False)
class PipeNode(Node):
    is_assign: bool = False
    decl: list[VariableNode] = field(default_factory=list)
    cmds: list[CommandNode] = field(default_factory=list)

    def text(self) -> str:
        out = ""
        if self.decl:
            out = ", ".join(v.text() for v in self.decl) + (" = " if self.is_assign else " := ")
        return out + " | ".join(c.text() for c in self.cmds)


@dataclass(eq=False)
class ActionNode(Node):
    pipe: PipeNode

    def text(self) -> str:
        return "{{" + self.pipe.text() + "}}"


@dataclass(eq=False)
class BranchNode(Node):
    kind: str  # if, range, with
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None

    def text(self) -> str:
        out = "{{" + self.kind + " " + self.pipe.text() + "}}" + self.body.text()
        if self.else_body is not None:
            out += "{{else}}" + self.else_body.text()
        return out + "{{end}}"


@dataclass(eq=False)
class TemplateNode(Node):
    name: str
    pipe: PipeNode | None

    def text(self) -> str:
        if self.pipe is None:
            return "{{template " + _go_quote(self.name) + "}}"
        return "{{template " + _go_quote(self.name) + " " + self.pipe.text() + "}}"


@dataclass(eq=False)
class _EndNode(Node):
    def text(self) -> str:
        return "{{end}}"


@dataclass(eq=False)
class _ElseNode(Node):
    def text(self) -> str:
        return "{{else}}"


FUNCTIONS = frozenset(
    "and call html index slice js len not or print printf println urlquery "
    "eq ge gt le lt ne".split()
)


def _is_empty_tree(n: Node) -> bool:
    if isinstance(n, ListNode):
        return all(_is_empty_tree(x) for x in n.nodes)
    if isinstance(n, TextNode):
        return not n.val.strip(" \t\r\n\v\f\x85\xa0")
    return False


# ===================================================================== parser
class _Parser:
    """Go 1.15's template parser over the lexer's items (one tree per call of
    :meth:`parse_tree`, all trees of a text sharing ``trees``)."""

    def __init__(self, items: list[Item], trees: dict[str, ListNode]) -> None:
        self.items = items
        self.i = 0
        self.trees = trees
        self.vars = ["$"]
        self.last = items[0]

    # ----------------------------------------------------------------- tokens
    def next(self) -> Item:
        it = self.items[min(self.i, len(self.items) - 1)]
        self.i += 1
        self.last = it
        return it

    def backup(self, n: int = 1) -> None:
        self.i -= n

    def peek(self) -> Item:
        return self.items[min(self.i, len(self.items) - 1)]

    def next_non_space(self) -> Item:
        while True:
            it = self.next()
            if it.typ != "space":
                return it

    def peek_non_space(self) -> Item:
        it = self.next_non_space()
        self.backup()
        return it

    def error(self, msg: str) -> GoError:
        return GoError(f"template: :{self.last.line}: {msg}")

    def expect(self, typ: str, context: str) -> Item:
        it = self.next_non_space()
        if it.typ != typ:
            raise self.unexpected(it, context)
        return it

    def unexpected(self, it: Item, context: str) -> GoError:
        if it.typ == "error":
            return self.error(str(it))
        return self.error(f"unexpected {it} in {context}")

    # ------------------------------------------------------------------ trees
    def parse_main(self) -> None:
        root = ListNode(self.peek().pos)
        while self.peek().typ != "eof":
            if self.peek().typ == "left":
                self.next()
                if self.next_non_space().typ == "define":
                    self.parse_definition()
                    continue
                self.i = self.i - 1
                while self.items[self.i].typ != "left":
                    self.i -= 1
            n = self.text_or_action()
            if isinstance(n, (_EndNode, _ElseNode)):
                raise self.error(f"unexpected {n.text()}")
            root.nodes.append(n)
        self.add("", root)

    def add(self, name: str, root: ListNode) -> None:
        old = self.trees.get(name)
        if old is None or _is_empty_tree(old):
            self.trees[name] = root
        elif not _is_empty_tree(root):
            raise self.error(f"template: multiple definition of template {_go_quote(name)}")

    def parse_definition(self) -> None:
        context = "define clause"
        tok = self.next_non_space()
        if tok.typ not in ("string", "rawstring"):
            raise self.unexpected(tok, context)
        name = self.unquote(tok)
        self.expect("right", context)
        saved, self.vars = self.vars, ["$"]
        body, end = self.item_list()
        self.vars = saved
        if not isinstance(end, _EndNode):
            raise self.error(f"unexpected {end.text()} in {context}")
        self.add(name, body)

    def unquote(self, tok: Item) -> str:
        try:
            return go_unquote(tok.val)
        except ValueError as e:
            raise self.error(str(e)) from None

    def item_list(self) -> tuple[ListNode, Node]:
        lst = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().typ != "eof":
            n = self.text_or_action()
            if isinstance(n, (_EndNode, _ElseNode)):
                return lst, n
            lst.nodes.append(n)
        raise self.error("unexpected EOF")

    def text_or_action(self) -> Node:
        tok = self.next_non_space()
        if tok.typ == "text":
            return TextNode(tok.pos, tok.val)
        if tok.typ == "left":
            return self.action()
        raise self.unexpected(tok, "input")

    def action(self) -> Node:
        tok = self.next_non_space()
        control = {
            "block": self.block_control,
            "else": self.else_control,
            "end": self.end_control,
            "if": lambda: self.branch("if", True),
            "range": lambda: self.branch("range", False),
            "template": self.template_control,
            "with": lambda: self.branch("with", False),
        }.get(tok.typ)
        if control is not None:
            return control()
        self.backup()
        pos = self.peek().pos
        return ActionNode(pos, self.pipeline("command"))

    def branch(self, kind: str, allow_else_if: bool) -> Node:
        n_vars = len(self.vars)
        try:
            pipe = self.pipeline(kind)
            body, nxt = self.item_list()
            else_body = None
            if isinstance(nxt, _ElseNode):
                if allow_else_if and self.peek().typ == "if":
                    self.next()
                    else_body = ListNode(nxt.pos, [self.branch("if", True)])
                else:
                    else_body, nxt = self.item_list()
                    if not isinstance(nxt, _EndNode):
                        raise self.error(f"expected end; found {nxt.text()}")
        finally:
            del self.vars[n_vars:]
        return BranchNode(pipe.pos, kind, pipe, body, else_body)

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        if peek.typ == "if":
            return _ElseNode(peek.pos)
        return _ElseNode(self.expect("right", "else").pos)

    def end_control(self) -> Node:
        return _EndNode(self.expect("right", "end").pos)

    def template_name(self, tok: Item, context: str) -> str:
        if tok.typ not in ("string", "rawstring"):
            raise self.unexpected(tok, context)
        return self.unquote(tok)

    def template_control(self) -> Node:
        context = "template clause"
        tok = self.next_non_space()
        name = self.template_name(tok, context)
        pipe = None
        if self.next_non_space().typ != "right":
            self.backup()
            pipe = self.pipeline(context)
        return TemplateNode(tok.pos, name, pipe)

    def block_control(self) -> Node:
        context = "block clause"
        tok = self.next_non_space()
        name = self.template_name(tok, context)
        pipe = self.pipeline(context)
        saved, self.vars = self.vars, ["$"]
        body, end = self.item_list()
        self.vars = saved
        if not isinstance(end, _EndNode):
            raise self.error(f"unexpected {end.text()} in {context}")
        self.add(name, body)
        return TemplateNode(tok.pos, name, pipe)

    # -------------------------------------------------------------- pipelines
    def pipeline(self, context: str) -> PipeNode:
        pipe = PipeNode(self.peek_non_space().pos)
        while True:  # declarations
            v = self.peek_non_space()
            if v.typ != "variable":
                break
            self.next()
            at_var = self.i
            nxt = self.peek_non_space()
            if nxt.typ in ("assign", "declare"):
                pipe.is_assign = nxt.typ == "assign"
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
            elif nxt.typ == "char" and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in ("variable", "right", "rparen"):
                        continue
                    raise self.error("range can only initialize variables")
                raise self.error(f"too many declarations in {context}")
            else:
                self.i = at_var - 1  # not a declaration: the variable is an operand
            break
        while True:
            tok = self.next_non_space()
            if tok.typ in ("right", "rparen"):
                self.check_pipeline(pipe, context)
                if tok.typ == "rparen":
                    self.backup()
                return pipe
            if tok.typ in (
                "bool",
                "charconst",
                "complex",
                "dot",
                "field",
                "identifier",
                "number",
                "nil",
                "rawstring",
                "string",
                "variable",
                "lparen",
            ):
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(tok, context)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            raise self.error(f"missing value for {context}")
        for i, c in enumerate(pipe.cmds[1:]):
            if isinstance(c.args[0], (BoolNode, DotNode, NilNode, NumberNode, StringNode)):
                raise self.error(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.typ == "space":
                continue
            if tok.typ == "error":
                raise self.error(tok.val)
            if tok.typ in ("right", "rparen"):
                self.backup()
            elif tok.typ != "pipe":
                raise self.error(f"unexpected {tok} in operand")
            break
        if not cmd.args:
            raise self.error("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == "field":
            pos = self.peek().pos
            fields: list[str] = []
            while self.peek().typ == "field":
                fields.append(self.next().val[1:])
            if isinstance(node, FieldNode):
                return FieldNode(pos, node.ident + fields)
            if isinstance(node, VariableNode):
                return VariableNode(pos, node.ident + fields)
            if isinstance(node, (BoolNode, StringNode, NumberNode, NilNode, DotNode)):
                raise self.error(f"unexpected . after term {_go_quote(node.text())}")
            return ChainNode(pos, node, fields)
        return node

    def term(self) -> Node | None:
        tok = self.next_non_space()
        t = tok.typ
        if t == "error":
            raise self.error(tok.val)
        if t == "identifier":
            if tok.val not in FUNCTIONS:
                raise self.error(f"function {_go_quote(tok.val)} not defined")
            return IdentifierNode(tok.pos, tok.val)
        if t == "dot":
            return DotNode(tok.pos)
        if t == "nil":
            return NilNode(tok.pos)
        if t == "variable":
            name = tok.val.split(".")[0]
            if name not in self.vars:
                raise self.error(f"undefined variable {_go_quote(name)}")
            return VariableNode(tok.pos, tok.val.split("."))
        if t == "field":
            return FieldNode(tok.pos, [tok.val[1:]])
        if t == "bool":
            return BoolNode(tok.pos, tok.val == "true")
        if t in ("charconst", "complex", "number"):
            return self.number(tok)
        if t == "lparen":
            pipe = self.pipeline("parenthesized pipeline")
            nxt = self.next()
            if nxt.typ != "rparen":
                raise self.error(f"unclosed right paren: unexpected {nxt}")
            return pipe
        if t in ("string", "rawstring"):
            return StringNode(tok.pos, tok.val, self.unquote(tok))
        self.backup()
        return None

    def number(self, tok: Item) -> NumberNode:
        """Go's newNumber, then the type idealConstant gives the number when executed."""
        text = tok.val
        if tok.typ == "charconst":
            try:
                v, _is_byte, end = _unquote_char(text, 1, "'")
            except (ValueError, IndexError):
                raise self.error("invalid syntax") from None
            if text[end:] != "'":
                raise self.error(f"malformed character constant: {text}")
            return NumberNode(tok.pos, text, v)
        if tok.typ == "complex":
            return NumberNode(tok.pos, text, _parse_complex(text))
        if text.endswith("i"):
            try:  # an imaginary constant, complex even when zero
                return NumberNode(tok.pos, text, complex(0, _parse_float(text[:-1], 64)))
            except (ValueError, OverflowError):
                pass
        u = _go_int(text, signed=False)
        i = _go_int(text, signed=True)
        if i == 0 and u is None:
            u = 0  # "-0"
        if i is None and u is None:
            try:
                f = _parse_float(text, 64)
            except (ValueError, OverflowError):
                raise self.error(f"illegal number syntax: {_go_quote(text)}") from None
            if not any(c in text for c in ".eEpP"):
                raise self.error(f"integer overflow: {_go_quote(text)}")
            return NumberNode(tok.pos, text, f)
        if any(c in text for c in ".eEpP") and not _is_hex_int(text):
            return NumberNode(tok.pos, text, float(i if i is not None else u))  # type: ignore[arg-type]
        if i is not None:
            return NumberNode(tok.pos, text, i)
        return NumberNode(tok.pos, text, u, overflow=True)


_DECIMAL = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_COMPLEX_RE = re.compile(f"({_DECIMAL})({_DECIMAL})i")


def _parse_complex(text: str) -> complex:
    """``1+2i`` as Go's fmt.Sscan reads it (decimal parts only)."""
    m = _COMPLEX_RE.fullmatch(text)
    if m is None or m.group(2)[0] not in "+-":
        raise GoUnsupported(f"the complex constant {text}")
    return complex(float(m.group(1)), float(m.group(2)))


def _go_int(text: str, signed: bool) -> int | None:
    try:
        return _parse_int(text, 0, 64, signed)
    except (ValueError, OverflowError):
        return None


def _is_hex_int(s: str) -> bool:
    return len(s) > 2 and s[0] == "0" and s[1] in "xX" and not any(c in s for c in "pP")


def parse(text: str) -> dict[str, ListNode]:
    """The trees of a template text by name (``""``: the main one), or GoError."""
    items = _Lexer(text).run()
    trees: dict[str, ListNode] = {}
    _Parser(items, trees).parse_main()
    return trees


# ================================================================== execution
class _Invalid:
    """Go's zero reflect.Value (no value at all)."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID = _Invalid()
_MISSING = object()


class Iface:
    """A value of static type ``interface {}``: an element of a map or slice (``v`` is
    None for a nil interface)."""

    __slots__ = ("v",)

    def __init__(self, v: object) -> None:
        self.v = v


def _dig(v: object) -> object:
    """Go's indirectInterface (and the pipeline's "dig down one level")."""
    if isinstance(v, Iface):
        return INVALID if v.v is None else v.v
    return v


def _static_type(v: object) -> str:
    return "interface {}" if isinstance(v, Iface) else type_name(v)


def _no_big(v: object, what: str) -> None:
    if isinstance(v, BigInt):
        raise GoUnsupported(f"{what} of a *big.Int")


def _is_true(v: object) -> bool:
    v = _dig(v)
    if v is INVALID:
        return False
    if isinstance(v, (str, bytes, list, dict)):
        return len(v) > 0
    if isinstance(v, BigInt):
        return True
    return bool(v)


def _go_len(v: object) -> int:
    if isinstance(v, str):
        return len(v.encode())
    assert isinstance(v, (bytes, list, dict))
    return len(v)


def _fmt_v(v: object) -> str:
    return sprint([v])


def _range_text(v: object) -> str:
    """%v of what range cannot iterate over (a big.Int as its struct: sign and words)."""
    if isinstance(v, BigInt):
        n, words = abs(v.v), []
        while n:
            words.append(str(n & (2**64 - 1)))
            n >>= 64
        return f"{{{'true' if v.v < 0 else 'false'} [{' '.join(words)}]}}"
    return _fmt_v(v)


def _as_go_int(v: object) -> int | None:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    return None


# ------------------------------------------------------------ builtin funcs
class _FuncError(Exception):
    """An error a builtin function returns (``error calling NAME: ...``)."""


def _basic_kind(v: object) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, Uint8):
        return "uint"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, complex):
        return "complex"
    if isinstance(v, str):
        return "string"
    return "invalid"


def _comparable(v: object) -> bool:
    return not isinstance(v, (list, dict, bytes))


def _eq(a: object, *rest: object) -> bool:
    a = _dig(a)  # a *big.Int is a pointer: of no basic kind, equal only to itself
    if a is not INVALID and not _comparable(a):
        raise _FuncError(f"uncomparable type {type_name(a)}: {_fmt_v(a)}")
    if not rest:
        raise _FuncError("missing argument for comparison")
    k1 = _basic_kind(a)
    for b in rest:
        b = _dig(b)
        k2 = _basic_kind(b)
        if k1 != k2:
            if {k1, k2} == {"int", "uint"}:
                truth = a == b
            else:
                raise _FuncError("incompatible types for comparison")
        elif k1 != "invalid":
            truth = a == b
        elif b is INVALID:
            truth = a is INVALID
        else:
            if not _comparable(b):
                raise _FuncError(f"uncomparable type {type_name(b)}: {_fmt_v(b)}")
            if a is INVALID:
                raise _FuncError("reflect: call of reflect.Value.Interface on zero Value")
            truth = a is b
        if truth:
            return True
    return False


def _lt(a: object, b: object) -> bool:
    a, b = _dig(a), _dig(b)
    k1 = _basic_kind(a)
    if k1 == "invalid":
        raise _FuncError("invalid type for comparison")
    k2 = _basic_kind(b)
    if k2 == "invalid":
        raise _FuncError("invalid type for comparison")
    if k1 != k2:
        if {k1, k2} == {"int", "uint"}:
            return a < b  # type: ignore[operator]
        raise _FuncError("incompatible types for comparison")
    if k1 in ("bool", "complex"):
        raise _FuncError("invalid type for comparison")
    if k1 == "string":
        assert isinstance(a, str) and isinstance(b, str)
        return a.encode() < b.encode()
    return a < b  # type: ignore[operator]


def _le(a: object, b: object) -> bool:
    return _lt(a, b) or _eq(a, b)


def _index_arg(index: object, cap_: int) -> int:
    x = _as_go_int(index)
    if x is None:
        if index is INVALID:
            raise _FuncError("cannot index slice/array with nil")
        raise _FuncError(f"cannot index slice/array with type {_static_type(index)}")
    if x < 0 or x > cap_:
        raise _FuncError(f"index out of range: {x}")
    return x


def _index(item: object, *indexes: object) -> object:
    item = _dig(item)
    if item is INVALID:
        raise _FuncError("index of untyped nil")
    for index in indexes:
        if isinstance(item, Iface):
            if item.v is None:
                raise _FuncError("index of nil pointer")
            item = item.v
        if isinstance(item, BigInt):
            raise _FuncError("can't index item of type big.Int")
        if isinstance(item, (str, bytes, list)):
            n = _go_len(item)
            x = _index_arg(_dig(index), n)
            if x == n:
                raise _FuncError(f"index out of range: {x}")
            if isinstance(item, str):
                item = Uint8(item.encode()[x])
            elif isinstance(item, bytes):
                item = Uint8(item[x])
            else:
                item = Iface(item[x])
        elif isinstance(item, dict):
            key = _dig(index)
            if key is INVALID:
                raise _FuncError("value is nil; should be of type string")
            if not isinstance(key, str):
                raise _FuncError(f"value has type {type_name(key)}; should be string")
            item = Iface(item.get(key))
        else:
            raise _FuncError(f"can't index item of type {type_name(item)}")
    return item


class _Slice(list):
    """A ``[]interface {}`` made by ``slice``: its elements, and the array it shares with
    the slice it was cut from (``backing[off:off + cap]``, nil past the backing list)."""

    backing: list[Any]
    off: int
    cap: int
    is_nil: bool


def _list_capacity(item: list[Any]) -> tuple[list[Any], int, int] | None:
    """(backing, offset, capacity) of a slice: a list CUE v0.4 decoded has the capacity
    Go's append gave it, the next power of two (measured up to 1024 elements)."""
    if isinstance(item, _Slice):
        return item.backing, item.off, item.cap
    n = len(item)
    if n > 1024:
        return None
    return item, 0, 1 << (n - 1).bit_length() if n else 0


def _slice(item: object, *indexes: object) -> object:
    item = _dig(item)
    if item is INVALID:
        raise _FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise _FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, BigInt):
        raise _FuncError("can't slice item of type *big.Int")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise _FuncError("cannot 3-index slice a string")
    elif not isinstance(item, (list, bytes)):
        raise _FuncError(f"can't slice item of type {type_name(item)}")
    n = _go_len(item)
    info = _list_capacity(item) if isinstance(item, list) else None
    cap_ = n if isinstance(item, str) else info[2] if info is not None else 1 << 62
    idx = [0, n, 0]
    for i, index in enumerate(indexes):
        idx[i] = _index_arg(index, cap_)
        if idx[i] > n and info is None:
            raise GoUnsupported("slice beyond the length of a slice (its capacity is Go's)")
    if idx[0] > idx[1]:
        raise _FuncError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise _FuncError(f"invalid slice index: {idx[1]} > {idx[2]}")
    if isinstance(item, str):
        return bytes_text(item.encode()[idx[0] : idx[1]])
    if info is None:
        return item[idx[0] : idx[1]]
    backing, off, cap = info
    start = off + idx[0]
    out = _Slice(backing[t] if t < len(backing) else None for t in range(start, off + idx[1]))
    out.backing, out.off = backing, start
    out.is_nil = not backing  # a slice of a nil slice (an empty list decoded) is nil
    out.cap = (idx[2] if len(indexes) == 3 else cap) - idx[0]
    return out


def _length(item: object) -> int:
    if isinstance(item, Iface):
        if item.v is None:
            raise _FuncError("len of nil pointer")
        item = item.v
    if item is INVALID:
        raise _FuncError("reflect: call of reflect.Value.Type on zero Value")
    if isinstance(item, BigInt):
        raise _FuncError("len of type big.Int")
    if isinstance(item, (str, bytes, list, dict)):
        return _go_len(item)
    raise _FuncError(f"len of type {type_name(item)}")


def _call(fn: object, *args: object) -> object:
    fn = _dig(fn)
    if fn is INVALID:
        raise _FuncError("call of nil")
    raise _FuncError(f"non-function of type {type_name(fn)}")


def _and(a: object, *rest: object) -> object:
    if not _is_true(a):
        return a
    for a in rest:
        if not _is_true(a):
            break
    return a


def _or(a: object, *rest: object) -> object:
    if _is_true(a):
        return a
    for a in rest:
        if _is_true(a):
            break
    return a


def _eval_args(args: tuple[object, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(["<no value>" if a is None else a for a in args])


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


def _html(*args: object) -> str:
    return html_escape(_eval_args(args))


def _js(*args: object) -> str:
    return js_escape(_eval_args(args))


_URL_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def _urlquery(*args: object) -> str:
    out = []
    for b in _eval_args(args).encode():
        if b in _URL_SAFE:
            out.append(chr(b))
        elif b == 0x20:
            out.append("+")
        else:
            out.append(f"%{b:02X}")
    return "".join(out)


@dataclass(frozen=True)
class _Func:
    fixed: tuple[str, ...]  # parameter types: V (reflect.Value), I (interface{}), S (string)
    variadic: str | None
    fn: Callable[..., object]


_FUNCS: dict[str, _Func] = {
    "and": _Func(("V",), "V", _and),
    "or": _Func(("V",), "V", _or),
    "call": _Func(("V",), "V", _call),
    "html": _Func((), "I", _html),
    "js": _Func((), "I", _js),
    "urlquery": _Func((), "I", _urlquery),
    "print": _Func((), "I", lambda *a: sprint(list(a))),
    "println": _Func((), "I", lambda *a: sprintln(list(a))),
    "printf": _Func(("S",), "I", lambda f, *a: sprintf(f, list(a))),
    "index": _Func(("V",), "V", _index),
    "slice": _Func(("V",), "V", _slice),
    "len": _Func(("V",), None, _length),
    "not": _Func(("V",), None, lambda a: not _is_true(a)),
    "eq": _Func(("V",), "V", _eq),
    "ne": _Func(("V", "V"), None, lambda a, b: not _eq(a, b)),
    "lt": _Func(("V", "V"), None, _lt),
    "le": _Func(("V", "V"), None, _le),
    "gt": _Func(("V", "V"), None, lambda a, b: not _le(a, b)),
    "ge": _Func(("V", "V"), None, lambda a, b: not _lt(a, b)),
}


class _State:
    def __init__(self, text: str, trees: dict[str, ListNode], name: str, depth: int) -> None:
        self.text = text
        self.trees = trees
        self.name = name
        self.depth = depth
        self.vars: list[list[Any]] = []
        self.node: Node | None = None
        self.out: list[str] = []

    # ---------------------------------------------------------------- errors
    def error(self, msg: str) -> GoError:
        node = self.node
        if node is None:
            return GoError(f"template: {self.name}: {msg}")
        before = self.text[: node.pos]
        line = 1 + before.count("\n")
        col = len(before[before.rfind("\n") + 1 :].encode())
        context = node.text()
        if len(context) > 20:
            context = context[:20] + "..."
        return GoError(
            f"template: :{line}:{col}: executing {_go_quote(self.name)} at <{context}>: {msg}"
        )

    def at(self, node: Node) -> None:
        self.node = node

    # ------------------------------------------------------------- variables
    def push(self, name: str, value: object) -> None:
        self.vars.append([name, value])

    def set_var(self, name: str, value: object) -> None:
        for v in reversed(self.vars):
            if v[0] == name:
                v[1] = value
                return
        raise self.error(f"undefined variable: {name}")

    def var_value(self, name: str) -> object:
        for v in reversed(self.vars):
            if v[0] == name:
                return v[1]
        raise self.error(f"undefined variable: {name}")

    # ------------------------------------------------------------------ walk
    def walk(self, dot: object, node: Node) -> None:
        self.at(node)
        if isinstance(node, ActionNode):
            val = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.at(node)
                self.print_value(val)
        elif isinstance(node, ListNode):
            for n in node.nodes:
                self.walk(dot, n)
        elif isinstance(node, TextNode):
            self.out.append(node.val)
        elif isinstance(node, BranchNode):
            if node.kind == "range":
                self.walk_range(dot, node)
            else:
                self.walk_if_or_with(dot, node)
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        else:  # pragma: no cover - the parser makes no other node
            raise self.error(f"unknown node: {node.text()}")

    def print_value(self, v: object) -> None:
        if v is INVALID:
            self.out.append("<no value>")
        else:
            self.out.append(sprint([v]))

    def walk_if_or_with(self, dot: object, node: BranchNode) -> None:
        mark = len(self.vars)
        val = self.eval_pipeline(dot, node.pipe)
        if _is_true(val):
            self.walk(val if node.kind == "with" else dot, node.body)
        elif node.else_body is not None:
            self.walk(dot, node.else_body)
        del self.vars[mark:]

    def walk_range(self, dot: object, node: BranchNode) -> None:
        self.at(node)
        outer = len(self.vars)
        if node.pipe.is_assign:
            raise GoUnsupported("range with an assignment (=) to a variable")
        val = _dig(self.eval_pipeline(dot, node.pipe))
        mark = len(self.vars)
        n_decl = len(node.pipe.decl)

        def one(index: object, elem: object) -> None:
            if n_decl > 0:
                self.vars[-1][1] = elem
            if n_decl > 1:
                self.vars[-2][1] = index
            self.walk(elem, node.body)
            del self.vars[mark:]

        if isinstance(val, list) and val:
            for i, e in enumerate(val):
                one(i, Iface(e))
        elif isinstance(val, bytes) and val:
            for i, b in enumerate(val):
                one(i, Uint8(b))
        elif isinstance(val, dict) and val:
            for k in sorted(val, key=lambda k: k.encode()):
                one(k, Iface(val[k]))
        elif not isinstance(val, (list, bytes, dict)) and val is not INVALID:
            self.at(node)
            raise self.error(f"range can't iterate over {_range_text(val)}")
        elif node.else_body is not None:
            self.walk(dot, node.else_body)
        del self.vars[outer:]

    def walk_template(self, dot: object, node: TemplateNode) -> None:
        self.at(node)
        tree = self.trees.get(node.name)
        if tree is None:
            raise self.error(f"template {_go_quote(node.name)} not defined")
        if self.depth == MAX_EXEC_DEPTH:
            raise self.error(f"exceeded maximum template depth ({MAX_EXEC_DEPTH})")
        dot = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else INVALID
        sub = _State(self.text, self.trees, node.name, self.depth + 1)
        sub.out = self.out
        sub.vars = [["$", dot]]
        sub.walk(dot, tree)

    # ------------------------------------------------------------- pipelines
    def eval_pipeline(self, dot: object, pipe: PipeNode) -> object:
        self.at(pipe)
        value: object = _MISSING
        for cmd in pipe.cmds:
            value = _dig(self.eval_command(dot, cmd, value))
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.ident[0], value)
            else:
                self.push(var.ident[0], value)
        return value

    def not_a_function(self, args: list[Node], final: object) -> None:
        if len(args) > 1 or final is not _MISSING:
            raise self.error(f"can't give argument to non-function {args[0].text()}")

    def eval_command(self, dot: object, cmd: CommandNode, final: object) -> object:
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            self.at(first)
            return self.eval_field_chain(dot, dot, first, first.ident, cmd.args, final)
        if isinstance(first, ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, BoolNode):
            return first.val
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            raise self.error("nil is not a command")
        if isinstance(first, NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, StringNode):
            return first.val
        raise self.error(f"can't evaluate command {_go_quote(first.text())}")

    def ideal_constant(self, n: NumberNode) -> object:
        self.at(n)
        if n.overflow:
            raise self.error(f"{n.src} overflows int")
        return n.value

    def eval_chain(self, dot: object, chain: ChainNode, args: list[Node], final: object) -> object:
        self.at(chain)
        if isinstance(chain.node, NilNode):
            raise self.error(f"indirection through explicit nil in {chain.text()}")
        pipe = self.eval_arg(dot, "I", chain.node, keep=True)
        return self.eval_field_chain(dot, pipe, chain, chain.fields, args, final)

    def eval_variable(
        self, dot: object, var: VariableNode, args: list[Node], final: object
    ) -> object:
        self.at(var)
        value = self.var_value(var.ident[0])
        if len(var.ident) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, var, var.ident[1:], args, final)

    def eval_field_chain(
        self,
        dot: object,
        receiver: object,
        node: Node,
        ident: list[str],
        args: list[Node],
        final: object,
    ) -> object:
        for name in ident[:-1]:
            receiver = self.eval_field(name, node, [], _MISSING, receiver)
        return self.eval_field(ident[-1], node, args, final, receiver)

    def eval_field(
        self, name: str, node: Node, args: list[Node], final: object, receiver: object
    ) -> object:
        if receiver is INVALID:
            return INVALID
        typ = _static_type(receiver)
        if isinstance(receiver, Iface):
            if receiver.v is None:
                raise self.error(f"nil pointer evaluating {typ}.{name}")
            receiver = receiver.v
        _no_big(receiver, "a field or method")
        if isinstance(receiver, dict):
            if len(args) > 1 or final is not _MISSING:
                raise self.error(f"{name} is not a method but has arguments")
            if name not in receiver:
                return INVALID
            return Iface(receiver[name])
        raise self.error(f"can't evaluate field {name} in type {typ}")

    # ------------------------------------------------------------- functions
    def eval_function(
        self, dot: object, node: IdentifierNode, cmd: Node, args: list[Node], final: object
    ) -> object:
        self.at(node)
        fn = _FUNCS[node.name]
        args = args[1:]
        n_in = len(args) + (final is not _MISSING)
        n_fixed = len(fn.fixed)
        if fn.variadic is not None:
            if n_in < n_fixed:
                raise self.error(
                    f"wrong number of args for {node.name}: want at least {n_fixed} "
                    f"got {len(args)}"
                )
        elif n_in != n_fixed:
            raise self.error(f"wrong number of args for {node.name}: want {n_fixed} got {n_in}")
        argv: list[object] = []
        for i, a in enumerate(args):
            typ = fn.fixed[i] if i < n_fixed else fn.variadic
            assert typ is not None
            argv.append(self.eval_arg(dot, typ, a))
        if final is not _MISSING:
            i = len(args)
            typ = fn.fixed[i] if i < n_fixed else fn.variadic
            assert typ is not None
            argv.append(self.validate(final, typ))
        try:
            return fn.fn(*argv)
        except _FuncError as e:
            self.at(cmd)
            raise self.error(f"error calling {node.name}: {e}") from None

    def validate(self, value: object, typ: str) -> object:
        """Go's validateType of an evaluated argument for a parameter of type ``typ``."""
        if typ == "V":
            return value
        if typ == "I":
            if value is INVALID:
                return None
            return value.v if isinstance(value, Iface) else value
        if value is INVALID:
            raise self.error("invalid value; expected string")
        if isinstance(value, Iface) and value.v is not None:
            value = value.v
        if isinstance(value, str):
            return value
        raise self.error(f"wrong type for value; expected string; got {_static_type(value)}")

    def eval_arg(self, dot: object, typ: str, n: Node, keep: bool = False) -> object:
        self.at(n)
        if isinstance(n, DotNode):
            value = dot
        elif isinstance(n, NilNode):
            if typ == "S":
                raise self.error("cannot assign nil to string")
            return INVALID if typ == "V" else None
        elif isinstance(n, FieldNode):
            value = self.eval_field_chain(dot, dot, n, n.ident, [], _MISSING)
        elif isinstance(n, VariableNode):
            value = self.eval_variable(dot, n, [], _MISSING)
        elif isinstance(n, PipeNode):
            value = self.eval_pipeline(dot, n)
        elif isinstance(n, IdentifierNode):
            value = self.eval_function(dot, n, n, [n], _MISSING)
        elif isinstance(n, ChainNode):
            value = self.eval_chain(dot, n, [], _MISSING)
        elif typ == "S":
            if isinstance(n, StringNode):
                return n.val
            raise self.error(f"expected string; found {n.text()}")
        elif isinstance(n, BoolNode):
            return n.val
        elif isinstance(n, NumberNode):
            return self.ideal_constant(n)
        elif isinstance(n, StringNode):
            return n.val
        else:  # pragma: no cover
            raise self.error(f"can't handle {n.text()} for arg of type {typ}")
        if keep:  # the receiver of a chain: evaluated as an untyped argument
            return INVALID if value is INVALID else value
        return self.validate(value, typ)


def execute(text: str, trees: dict[str, ListNode], data: object) -> str:
    """Run the main template over ``data`` (a Go value; None is a nil interface)."""
    dot: object = INVALID if data is None else data
    state = _State(text, trees, "", 0)
    state.vars = [["$", dot]]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 30 * MAX_EXEC_DEPTH + 2000))
    try:
        state.walk(dot, trees[""])
    except RecursionError:
        raise GoUnsupported("a template nested too deeply for the built-in evaluator") from None
    finally:
        sys.setrecursionlimit(limit)
    return "".join(state.out)


__all__ = [
    "GoError",
    "GoUnsupported",
    "execute",
    "go_unquote",
    "html_escape",
    "js_escape",
    "parse",
]
