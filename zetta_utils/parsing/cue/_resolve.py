"""Lexical scoping: binds every identifier of a file to the declaration it denotes.

CUE is lexically scoped by blocks: each struct literal is a block whose field identifiers
(``a``, ``#a``, ``_a``; not quoted labels) and ``let`` names are visible in it and in
nested blocks, including declarations that come later in the text. Each ``for`` and
``let`` clause of a comprehension opens a block of its own. The resolver records, on each
:class:`~._ast.Ident`, what it denotes and how many runtime environments up it lives.
"""

from __future__ import annotations

from ._ast import (
    BasicLit,
    Binary,
    BottomLit,
    Call,
    Comprehension,
    DataLit,
    Disjunction,
    Ellipsis,
    Embed,
    Field,
    File,
    ForClause,
    Ident,
    IfClause,
    Index,
    Interp,
    LetClause,
    LetDecl,
    ListLit,
    Node,
    Paren,
    Selector,
    StructLit,
    Unary,
)
from ._errors import CueError, unsupported

BUILTIN_NAMES = frozenset(
    {
        "int",
        "float",
        "number",
        "string",
        "bool",
        "bytes",
        "len",
        "close",
        "and",
        "or",
        "div",
        "mod",
        "quo",
        "rem",
        "uint",
        "uint8",
        "int8",
        "uint16",
        "int16",
        "uint32",
        "int32",
        "uint64",
        "int64",
        "uint128",
        "int128",
        "float32",
        "float64",
        "rune",
    }
)


class _Scope:
    __slots__ = ("is_clause", "is_file", "names")

    def __init__(self, is_file: bool = False, is_clause: bool = False) -> None:
        # name -> (kind, key, node)
        self.names: dict[str, tuple[str, object, Node | None]] = {}
        self.is_file = is_file
        self.is_clause = is_clause


def _is_struct_let(scope: _Scope, kind: str) -> bool:
    return kind == "let" and not scope.is_clause


def check_let_conflicts(scope: _Scope, outer_scopes: list[_Scope]) -> None:
    """CUE v0.4 rejects a struct-level ``let`` and a field, ``for`` variable or ``let``
    clause of the same name when the block of one encloses the other."""
    for name, (kind, _key, node) in scope.names.items():
        inner_let = _is_struct_let(scope, kind)
        for outer in outer_scopes:
            hit = outer.names.get(name)
            if hit is not None and inner_let != _is_struct_let(outer, hit[0]):
                assert node is not None
                raise CueError(
                    f"{node.pos}: cannot have both alias and field with name {name!r} in same scope"
                )


class Resolver:
    def __init__(self, imports: dict[str, str]) -> None:
        self.imports = imports
        self.used_lets: set[int] = set()
        self.used_imports: set[str] = set()
        self.all_lets: list[tuple[Node, str]] = []

    # ------------------------------------------------------------------ scopes
    def struct_scope(self, lit: StructLit) -> _Scope:
        scope = _Scope(is_file=lit.is_file)
        for d in lit.decls:
            if isinstance(d, Field) and d.label.kind == "ident":
                name = d.label.name
                prev = scope.names.get(name)
                if prev is not None and prev[0] == "let":
                    raise CueError(
                        f"{d.pos}: field {name} conflicts with let declaration of the same name"
                    )
                if prev is not None and not prev[2].optional:  # type: ignore[union-attr]
                    continue  # keep a regular declaration for the optional check
                scope.names[name] = ("field", d.label.key, d)
            elif isinstance(d, LetDecl):
                if d.name in scope.names:
                    raise CueError(f"{d.pos}: {d.name} redeclared in this block")
                scope.names[d.name] = ("let", d.name, d)
                self.all_lets.append((d, d.name))
        return scope

    def lookup(self, ident: Ident, scopes: list[_Scope]) -> None:
        name = ident.name
        if name == "_":
            ident.kind = "top"
            return
        if name.startswith("__") and name[2:] in BUILTIN_NAMES:
            # `__div` etc. always denote the predeclared identifier.
            ident.kind = "builtin"
            ident.key = name[2:]
            ident.name = name[2:]
            return
        up = 0
        for scope in reversed(scopes):
            if scope.is_file and name in self.imports:
                ident.kind = "import"
                ident.key = self.imports[name]
                self.used_imports.add(name)
                return
            hit = scope.names.get(name)
            if hit is not None:
                kind, key, node = hit
                ident.kind = kind
                ident.up = up
                ident.key = key
                ident.target = node
                if kind == "let":
                    self.used_lets.add(id(node))
                return
            up += 1
        if name in BUILTIN_NAMES:
            ident.kind = "builtin"
            ident.key = name
            return
        raise CueError(f"{ident.pos}: reference {name!r} not found")

    # ------------------------------------------------------------------- walk
    def file(self, f: File) -> None:
        self.struct(f.struct, [])
        for node, name in self.all_lets:
            if id(node) not in self.used_lets:
                raise CueError(f"{node.pos}: unreferenced alias or let clause {name}")

    def struct(self, lit: StructLit, scopes: list[_Scope]) -> None:
        scope = self.struct_scope(lit)
        check_let_conflicts(scope, scopes)
        scopes = [*scopes, scope]
        for d in lit.decls:
            if isinstance(d, Field):
                if d.label.expr is not None:
                    self.expr(d.label.expr, scopes)
                self.expr(d.value, scopes)
            elif isinstance(d, LetDecl):
                self.expr(d.expr, scopes)
            elif isinstance(d, Embed):
                self.expr(d.expr, scopes)
            elif isinstance(d, Comprehension):
                self.comprehension(d, scopes)
            elif isinstance(d, Ellipsis):
                if d.expr is not None:
                    self.expr(d.expr, scopes)
            else:  # pragma: no cover - the parser produces nothing else
                raise CueError(f"{d.pos}: unexpected declaration")

    def comprehension(self, c: Comprehension, scopes: list[_Scope]) -> None:
        for clause in c.clauses:
            if isinstance(clause, ForClause):
                self.expr(clause.source, scopes)
                scope = _Scope(is_clause=True)
                if clause.key is not None:
                    if clause.key == clause.value:
                        raise CueError(f"{clause.pos}: {clause.key} redeclared in for clause")
                    scope.names[clause.key] = ("var", clause.key, clause)
                scope.names[clause.value] = ("var", clause.value, clause)
                check_let_conflicts(scope, scopes)
                scopes = [*scopes, scope]
            elif isinstance(clause, IfClause):
                self.expr(clause.cond, scopes)
            elif isinstance(clause, LetClause):
                self.expr(clause.expr, scopes)
                scope = _Scope(is_clause=True)
                scope.names[clause.name] = ("let", clause.name, clause)
                self.all_lets.append((clause, clause.name))
                check_let_conflicts(scope, scopes)
                scopes = [*scopes, scope]
        self.struct(c.body, scopes)

    def expr(self, node: Node, scopes: list[_Scope]) -> None:
        if isinstance(node, Ident):
            self.lookup(node, scopes)
        elif isinstance(node, (BasicLit, BottomLit, DataLit)):
            return
        elif isinstance(node, Selector):
            self.expr(node.x, scopes)
        elif isinstance(node, Index):
            self.expr(node.x, scopes)
            self.expr(node.index, scopes)
        elif isinstance(node, Call):
            self.expr(node.fn, scopes)
            if (
                isinstance(node.fn, Ident)
                and node.fn.kind == "builtin"
                and node.fn.key in ("close", "and", "or")
            ):
                raise unsupported(node.pos, f"{node.fn.key}() builtin")
            for a in node.args:
                self.expr(a, scopes)
        elif isinstance(node, Binary):
            self.expr(node.x, scopes)
            self.expr(node.y, scopes)
        elif isinstance(node, Unary):
            self.expr(node.x, scopes)
        elif isinstance(node, Disjunction):
            for term, _ in node.terms:
                self.expr(term, scopes)
        elif isinstance(node, Paren):
            self.expr(node.x, scopes)
        elif isinstance(node, Interp):
            for p in node.parts:
                if isinstance(p, Node):
                    self.expr(p, scopes)
        elif isinstance(node, StructLit):
            self.struct(node, scopes)
        elif isinstance(node, ListLit):
            for e in node.elems:
                if isinstance(e, Comprehension):
                    self.comprehension(e, scopes)
                else:
                    self.expr(e, scopes)
            if node.ellipsis is not None and node.ellipsis.expr is not None:
                self.expr(node.ellipsis.expr, scopes)
        else:  # pragma: no cover
            raise CueError(f"{node.pos}: unexpected expression")


def resolve(f: File) -> None:
    imports: dict[str, str] = {}
    for imp in f.imports:
        if imp.name in imports:
            raise CueError(f"{imp.pos}: {imp.name} redeclared as imported package name")
        imports[imp.name] = imp.path
    Resolver(imports).file(f)
