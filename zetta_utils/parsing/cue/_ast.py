"""Syntax tree of the CUE subset. Identifiers are annotated in place by the resolver."""

from __future__ import annotations

from ._errors import Pos

# Labels of definitions and hidden fields carry this prefix so that they can never collide
# with a regular field spelled the same way as a quoted string (``"#a"`` is a regular field).
IDENT_LABEL_PREFIX = "\x00"


def ident_label(name: str) -> str:
    """The internal label of a field declared with identifier ``name``."""
    if name.startswith("#") or name.startswith("_"):
        return IDENT_LABEL_PREFIX + name
    return name


def label_is_regular(label: object) -> bool:
    return isinstance(label, str) and not label.startswith(IDENT_LABEL_PREFIX)


def label_is_definition(label: object) -> bool:
    return isinstance(label, str) and label.startswith(IDENT_LABEL_PREFIX + "#")


def label_is_hidden(label: object) -> bool:
    return isinstance(label, str) and label.startswith(IDENT_LABEL_PREFIX + "_")


def label_str(label: object) -> str:
    if isinstance(label, int):
        return str(label)
    assert isinstance(label, str)
    if label.startswith(IDENT_LABEL_PREFIX):
        return label[1:]
    if label.isidentifier():
        return label
    import json

    return json.dumps(label, ensure_ascii=False)


class Node:
    __slots__ = ("pos",)

    def __init__(self, pos: Pos) -> None:
        self.pos = pos


class Ident(Node):
    """A reference. ``kind``/``up``/``key`` are filled in by the resolver:
    kind is one of "field", "let", "var", "import", "builtin", "top"."""

    __slots__ = ("key", "kind", "name", "target", "up")

    def __init__(self, pos: Pos, name: str) -> None:
        super().__init__(pos)
        self.name = name
        self.kind = ""
        self.up = 0
        self.key: object = None
        self.target: object = None


class BasicLit(Node):
    """null, bool, int, float, string or bytes literal; ``value`` is None, bool, int,
    Decimal, str or bytes. ``atom`` caches the evaluator's value of the literal."""

    __slots__ = ("atom", "kind", "text", "value")

    def __init__(self, pos: Pos, kind: str, value: object, text: str | None = None) -> None:
        super().__init__(pos)
        self.kind = kind
        self.value = value
        self.atom: object = None
        self.text = text  # a number's source text


class BottomLit(Node):
    __slots__ = ()


class Interp(Node):
    """An interpolated string (or byte string): parts are str (bytes) or expressions."""

    __slots__ = ("is_bytes", "parts")

    def __init__(self, pos: Pos, parts: list[object], is_bytes: bool = False) -> None:
        super().__init__(pos)
        self.parts = parts
        self.is_bytes = is_bytes


class Label(Node):
    """A field label: kind "ident" (name), "string" (name) or "dynamic" (expr)."""

    __slots__ = ("expr", "key", "kind", "name")

    def __init__(self, pos: Pos, kind: str, name: str = "", expr: Node | None = None) -> None:
        super().__init__(pos)
        self.kind = kind
        self.name = name
        self.expr = expr
        self.key: object = ident_label(name) if kind == "ident" else name


class Field(Node):
    __slots__ = ("label", "optional", "value")

    def __init__(self, pos: Pos, label: Label, value: Node, optional: bool) -> None:
        super().__init__(pos)
        self.label = label
        self.value = value
        self.optional = optional


class LetDecl(Node):
    __slots__ = ("expr", "name")

    def __init__(self, pos: Pos, name: str, expr: Node) -> None:
        super().__init__(pos)
        self.name = name
        self.expr = expr


class Embed(Node):
    __slots__ = ("expr",)

    def __init__(self, pos: Pos, expr: Node) -> None:
        super().__init__(pos)
        self.expr = expr


class Ellipsis(Node):
    __slots__ = ("expr",)

    def __init__(self, pos: Pos, expr: Node | None) -> None:
        super().__init__(pos)
        self.expr = expr


class ForClause(Node):
    __slots__ = ("key", "source", "value")

    def __init__(self, pos: Pos, key: str | None, value: str, source: Node) -> None:
        super().__init__(pos)
        self.key = key
        self.value = value
        self.source = source


class IfClause(Node):
    __slots__ = ("cond",)

    def __init__(self, pos: Pos, cond: Node) -> None:
        super().__init__(pos)
        self.cond = cond


class LetClause(Node):
    __slots__ = ("expr", "name")

    def __init__(self, pos: Pos, name: str, expr: Node) -> None:
        super().__init__(pos)
        self.name = name
        self.expr = expr


class StructLit(Node):
    """A struct literal. After parsing, ``fields``/``static_labels`` etc. are derived
    for fast evaluation (see ``prepare``)."""

    __slots__ = (
        "decls",
        "feature_labels",
        "has_ellipsis",
        "has_embed",
        "is_file",
        "label_pos",
        "marks_struct",
    )

    def __init__(self, pos: Pos, decls: list[Node], is_file: bool = False) -> None:
        super().__init__(pos)
        self.decls = decls
        self.is_file = is_file
        self.feature_labels: list[object] = []
        self.has_embed = False
        self.has_ellipsis = False
        self.marks_struct = False
        self.label_pos: dict[object, Pos] = {}
        self.prepare()

    def prepare(self) -> None:
        feats: list[object] = []
        has_embed = False
        marks = False
        for d in self.decls:
            if isinstance(d, Field):
                if d.label.kind != "dynamic":
                    feats.append(d.label.key)
                    self.label_pos.setdefault(d.label.key, d.label.pos)
                    if label_is_regular(d.label.key) and not d.optional:
                        marks = True
                else:
                    marks = True
            elif isinstance(d, Embed):
                has_embed = True
            elif isinstance(d, Ellipsis):
                self.has_ellipsis = True
                marks = True
        self.feature_labels = feats
        self.has_embed = has_embed
        # A struct literal makes its value a struct unless it embeds expressions and
        # declares no regular field (``{ _hidden: 1, 5 }`` is the number 5).
        # Comprehensions do not count as embeddings here (``{ if false {...} }`` is {}).
        self.marks_struct = marks or not has_embed


class Comprehension(Node):
    __slots__ = ("body", "clauses")

    def __init__(self, pos: Pos, clauses: list[Node], body: StructLit) -> None:
        super().__init__(pos)
        self.clauses = clauses
        self.body = body


class ListLit(Node):
    __slots__ = ("elems", "ellipsis")

    def __init__(self, pos: Pos, elems: list[Node], ellipsis: Ellipsis | None) -> None:
        super().__init__(pos)
        self.elems = elems
        self.ellipsis = ellipsis


class Unary(Node):
    __slots__ = ("op", "x")

    def __init__(self, pos: Pos, op: str, x: Node) -> None:
        super().__init__(pos)
        self.op = op
        self.x = x


class Binary(Node):
    __slots__ = ("op", "x", "y")

    def __init__(self, pos: Pos, op: str, x: Node, y: Node) -> None:
        super().__init__(pos)
        self.op = op
        self.x = x
        self.y = y


class Disjunction(Node):
    """``a | *b | c``: terms with their default marks (consecutive ``|`` are one
    disjunction; a parenthesized disjunction is a separate term)."""

    __slots__ = ("leaves", "terms")

    def __init__(self, pos: Pos, terms: list[tuple[Node, bool]]) -> None:
        super().__init__(pos)
        self.terms = terms
        # Cache of the evaluator: the leaves with their default marks, and whether any
        # leaf is a default.
        self.leaves: tuple[list[tuple[Node, bool]], bool] | None = None


class Paren(Node):
    __slots__ = ("x",)

    def __init__(self, pos: Pos, x: Node) -> None:
        super().__init__(pos)
        self.x = x


class Selector(Node):
    __slots__ = ("key", "name", "x")

    def __init__(self, pos: Pos, x: Node, name: str, key: object) -> None:
        super().__init__(pos)
        self.x = x
        self.name = name
        self.key = key


class Index(Node):
    __slots__ = ("index", "x")

    def __init__(self, pos: Pos, x: Node, index: Node) -> None:
        super().__init__(pos)
        self.x = x
        self.index = index


class Call(Node):
    __slots__ = ("args", "fn")

    def __init__(self, pos: Pos, fn: Node, args: list[Node]) -> None:
        super().__init__(pos)
        self.fn = fn
        self.args = args


class Import(Node):
    __slots__ = ("name", "path")

    def __init__(self, pos: Pos, name: str, path: str) -> None:
        super().__init__(pos)
        self.name = name
        self.path = path


class DataLit(Node):
    """A value computed by a builtin, spliced back into the tree as a literal."""

    __slots__ = ("value",)

    def __init__(self, pos: Pos, value: object) -> None:
        super().__init__(pos)
        self.value = value


class ValueLit(Node):
    """A value (a builtin's argument, such as the schema of ``yaml.Validate``) unified as
    it is: ``is_def`` when it is a definition's value, which closes it."""

    __slots__ = ("is_def", "value")

    def __init__(self, pos: Pos, value: object, is_def: bool) -> None:
        super().__init__(pos)
        self.value = value
        self.is_def = is_def


class File(Node):
    __slots__ = ("imports", "struct")

    def __init__(self, pos: Pos, struct: StructLit, imports: list[Import]) -> None:
        super().__init__(pos)
        self.struct = struct
        self.imports = imports
