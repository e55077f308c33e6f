"""Recursive-descent parser for the CUE subset: tokens to the syntax tree of ``_ast``."""

from __future__ import annotations

from ._ast import (
    BasicLit,
    Binary,
    BottomLit,
    Call,
    Comprehension,
    Disjunction,
    Ellipsis,
    Embed,
    Field,
    File,
    ForClause,
    Ident,
    IfClause,
    Import,
    Index,
    Interp,
    Label,
    LetClause,
    LetDecl,
    ListLit,
    Node,
    Paren,
    Selector,
    StructLit,
    Unary,
    ident_label,
)
from ._errors import CueError, syntax_error, unsupported
from ._lexer import ATTR, BOTTOM, BYTES, COMMA, EOF, FLOAT, IDENT, INT, STRING, Token, tokenize

_BINARY_PREC = {
    "|": 1,
    "&": 2,
    "||": 3,
    "&&": 4,
    "==": 5,
    "!=": 5,
    "<": 5,
    "<=": 5,
    ">": 5,
    ">=": 5,
    "=~": 5,
    "!~": 5,
    "+": 6,
    "-": 6,
    "*": 7,
    "/": 7,
}
_WORD_OPS = {"div": 7, "mod": 7, "quo": 7, "rem": 7}
_UNARY_OPS = frozenset({"+", "-", "!", "*", "<", "<=", ">", ">=", "!=", "=~", "!~", "=="})
_KEYWORD_VALUES = {"null", "true", "false"}


def _describe(tok: Token) -> str:
    if tok.kind == EOF:
        return "EOF"
    if tok.kind == COMMA and tok.implicit:
        return "newline"
    if tok.kind == STRING:
        return "string literal"
    if tok.kind == BYTES:
        return "bytes literal"
    if tok.kind in (INT, FLOAT):
        return f"number {tok.val}"
    if tok.kind == IDENT:
        return f"identifier {tok.val}"
    return f"'{tok.val}'"


class Parser:
    def __init__(self, tokens: list[Token], filename: str) -> None:
        self.toks = tokens
        self.i = 0
        self.filename = filename

    # ----------------------------------------------------------------- helpers
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Token:
        j = min(self.i + k, len(self.toks) - 1)
        return self.toks[j]

    def next(self) -> Token:
        t = self.toks[self.i]
        if self.i < len(self.toks) - 1:
            self.i += 1
        return t

    def is_op(self, op: str) -> bool:
        t = self.toks[self.i]
        return t.kind == op

    def expect(self, op: str, ctx: str) -> Token:
        t = self.tok
        if t.kind != op:
            raise syntax_error(t.pos, f"expected '{op}' {ctx}, found {_describe(t)}")
        return self.next()

    def skip_attrs(self) -> None:
        while self.tok.kind == ATTR:
            self.next()

    # -------------------------------------------------------------------- file
    def parse_file(self) -> File:
        start = self.tok.pos
        # Leading attributes and the package clause.
        while self.tok.kind == ATTR:
            self.next()
            self.skip_commas()
        if self.tok.kind == IDENT and self.tok.val == "package" and self.peek().kind == IDENT:
            self.next()
            self.next()
            self.end_decl("after package clause")
        imports: list[Import] = []
        while (
            self.tok.kind == IDENT
            and self.tok.val == "import"
            and self.peek().kind
            in (
                "(",
                STRING,
                IDENT,
            )
        ):
            self.next()
            if self.is_op("("):
                self.next()
                self.skip_commas()
                while not self.is_op(")"):
                    imports.append(self.import_spec())
                    if self.is_op(")"):
                        break
                    self.expect(COMMA, "in import declaration")
                    self.skip_commas()
                self.next()
            else:
                imports.append(self.import_spec())
            self.end_decl("after import declaration")
        decls = self.decl_list(EOF)
        return File(start, StructLit(start, decls, is_file=True), imports)

    def skip_commas(self) -> None:
        while self.tok.kind == COMMA:
            self.next()

    def end_decl(self, ctx: str) -> None:
        if self.tok.kind == EOF:
            return
        self.expect(COMMA, ctx)
        self.skip_commas()

    def import_spec(self) -> Import:
        pos = self.tok.pos
        name = ""
        if self.tok.kind == IDENT:
            name = str(self.next().val)
        t = self.tok
        if t.kind != STRING or t.parts is not None:
            raise syntax_error(t.pos, f"expected import path, found {_describe(t)}")
        self.next()
        path = str(t.val)
        if not name:
            base = path.split(":")[-1] if ":" in path else path.rsplit("/", 1)[-1]
            name = base
        return Import(pos, name, path)

    # ------------------------------------------------------------ declarations
    def decl_list(self, end: str) -> list[Node]:
        decls: list[Node] = []
        self.skip_commas_implicit()
        while not self.is_op(end):
            if self.tok.kind == ATTR:
                self.next()
                self.end_list_decl(end)
                continue
            decls.append(self.decl())
            self.end_list_decl(end)
        return decls

    def end_list_decl(self, end: str) -> None:
        if self.is_op(end):
            return
        t = self.tok
        if t.kind != COMMA:
            where = "struct literal" if end == "}" else "file"
            raise syntax_error(t.pos, f"missing ',' in {where} (found {_describe(t)})")
        self.next()
        self.skip_commas_implicit()

    def decl(self) -> Node:
        t = self.tok
        if (
            t.kind == IDENT
            and t.val == "let"
            and self.peek().kind == IDENT
            and self.peek(2).kind == "="
        ):
            self.next()
            name = str(self.next().val)
            self.next()
            expr = self.expr()
            return LetDecl(t.pos, name, expr)
        if t.kind == IDENT and t.val in ("for", "if") and self.starts_clause():
            return self.comprehension()
        if t.kind == "...":
            self.next()
            # `...` ends its declaration at a newline or the closing brace (CUE v0.4
            # reads anything else after it, an explicit comma too, as its type).
            nxt = self.tok
            if nxt.kind == COMMA and nxt.implicit:
                return Ellipsis(t.pos, None)
            if nxt.kind == "}":
                return Ellipsis(t.pos, None)
            if nxt.kind in (COMMA, EOF):
                raise syntax_error(nxt.pos, f"expected operand, found {_describe(nxt)}")
            raise unsupported(t.pos, "typed ellipsis '...T' in a struct")
        if t.kind == "[" and self.is_pattern_constraint():
            raise unsupported(t.pos, "pattern constraint '[pattern]: value'")
        if t.kind == IDENT and self.peek().kind == "=" and self.peek(2).kind != "=":
            raise unsupported(t.pos, f"alias '{t.val}=' ")
        field = self.try_field()
        if field is not None:
            return field
        expr = self.expr()
        self.skip_attrs()
        return Embed(expr.pos, expr)

    def starts_clause(self) -> bool:
        # `for` and `if` followed by something that is not ':' start a comprehension.
        nxt = self.peek()
        return nxt.kind not in (":", "?", COMMA, EOF)

    def is_pattern_constraint(self) -> bool:
        depth = 0
        j = self.i
        while j < len(self.toks):
            k = self.toks[j].kind
            if k in ("[", "(", "{"):
                depth += 1
            elif k in ("]", ")", "}"):
                depth -= 1
                if depth == 0:
                    nxt = self.toks[j + 1].kind if j + 1 < len(self.toks) else EOF
                    return nxt in (":", "?")
            elif k == EOF:
                return False
            j += 1
        return False

    def label_at(self) -> tuple[Label | None, int]:
        """If a label followed by ':' (or '?:') starts at the current token, return it and
        the number of tokens it spans (including the optional marker)."""
        t = self.tok
        if t.kind == IDENT:
            nxt = self.peek()
            if nxt.kind == ":" or (nxt.kind == "?" and self.peek(2).kind == ":"):
                name = str(t.val)
                if name in _KEYWORD_VALUES:
                    raise syntax_error(t.pos, f"cannot use keyword {name} as a label")
                return Label(t.pos, "ident", name), 1
            if nxt.kind == "!" and self.peek(2).kind == ":":
                raise unsupported(t.pos, "required field marker '!'")
            return None, 0
        if t.kind == STRING or t.kind == BYTES:
            nxt = self.peek()
            if nxt.kind == ":" or (nxt.kind == "?" and self.peek(2).kind == ":"):
                if t.parts is None:
                    # A byte string label ('a': 1) declares the regular field "a".
                    name = str(t.val) if t.kind == STRING else _bytes_label(t)
                    return Label(t.pos, "string", name), 1
                return Label(t.pos, "dynamic", expr=self.string_node(t)), 1
            return None, 0
        if t.kind == "(":
            # Dynamic label `(expr): value`: find the matching ')'.
            depth = 0
            j = self.i
            while j < len(self.toks):
                k = self.toks[j].kind
                if k in ("(", "[", "{"):
                    depth += 1
                elif k in (")", "]", "}"):
                    depth -= 1
                    if depth == 0:
                        break
                elif k == EOF:
                    return None, 0
                j += 1
            nxt = self.toks[j + 1] if j + 1 < len(self.toks) else self.toks[-1]
            after = self.toks[j + 2] if j + 2 < len(self.toks) else self.toks[-1]
            if nxt.kind == ":" or (nxt.kind == "?" and after.kind == ":"):
                self.next()
                expr = self.expr()
                self.expect(")", "after dynamic label")
                self.i -= 1  # leave the ')' as the label's last token
                return Label(t.pos, "dynamic", expr=expr), 1
            return None, 0
        return None, 0

    def try_field(self) -> Field | None:
        start = self.tok.pos
        label, span = self.label_at()
        if label is None:
            return None
        for _ in range(span):
            self.next()
        optional = False
        if self.is_op("?"):
            self.next()
            optional = True
        self.expect(":", "after label")
        if self.tok.kind == "[" and self.is_pattern_constraint():
            raise unsupported(self.tok.pos, "pattern constraint '[pattern]: value'")
        inner = self.try_field()
        value: Node
        if inner is not None:
            value = StructLit(inner.pos, [inner])
        else:
            if self.tok.kind == IDENT and self.peek().kind == "=" and self.peek(2).kind != "=":
                raise unsupported(self.tok.pos, f"value alias '{self.tok.val}='")
            value = self.expr()
        self.skip_attrs()
        return Field(start, label, value, optional)

    def comprehension(self) -> Comprehension:
        pos = self.tok.pos
        clauses = self.clauses()
        if not self.is_op("{"):
            raise syntax_error(
                self.tok.pos,
                f"expected '{{' after comprehension clauses, found {_describe(self.tok)}",
            )
        body = self.struct_lit()
        return Comprehension(pos, clauses, body)

    def clauses(self) -> list[Node]:
        clauses: list[Node] = []
        while True:
            t = self.tok
            if t.kind == IDENT and t.val == "for":
                self.next()
                first = self.expect(IDENT, "after 'for'")
                key = None
                value = str(first.val)
                if self.is_op(","):
                    self.next()
                    second = self.expect(IDENT, "after ',' in for clause")
                    key, value = value, str(second.val)
                in_tok = self.tok
                if not (in_tok.kind == IDENT and in_tok.val == "in"):
                    raise syntax_error(in_tok.pos, f"expected 'in', found {_describe(in_tok)}")
                self.next()
                source = self.expr()
                clauses.append(ForClause(t.pos, key, value, source))
            elif t.kind == IDENT and t.val == "if":
                self.next()
                clauses.append(IfClause(t.pos, self.expr()))
            elif t.kind == IDENT and t.val == "let" and clauses:
                self.next()
                name = self.expect(IDENT, "after 'let'")
                self.expect("=", "in let clause")
                clauses.append(LetClause(t.pos, str(name.val), self.expr()))
            else:
                break
            # Clauses may be separated by commas (also inserted ones at line ends), and
            # the body may start on the next line.
            if self.tok.kind == COMMA:
                nxt = self.peek()
                if nxt.kind == IDENT and nxt.val in ("for", "if", "let"):
                    self.next()
                elif nxt.kind == "{" and self.tok.implicit:
                    self.next()
        if not clauses:
            raise syntax_error(self.tok.pos, "expected comprehension clause")
        return clauses

    # ------------------------------------------------------------- expressions
    def expr(self) -> Node:
        return self.binary(1)

    def binary(self, min_prec: int) -> Node:
        left = self.unary()
        return self.binary_rest(left, min_prec)

    def binary_rest(self, left: Node, min_prec: int) -> Node:
        while True:
            t = self.tok
            if t.kind == IDENT and t.val in _WORD_OPS:
                op = str(t.val)
                prec = _WORD_OPS[op]
            elif t.kind in _BINARY_PREC:
                op = t.kind
                prec = _BINARY_PREC[op]
            else:
                return left
            if prec < min_prec:
                return left
            self.next()
            if op == "|":
                terms = [self.disj_term(left)]
                right = self.binary(prec + 1)
                terms.append(self.disj_term(right))
                while self.is_op("|"):
                    self.next()
                    terms.append(self.disj_term(self.binary(prec + 1)))
                left = Disjunction(left.pos, terms)
                continue
            right = self.binary(prec + 1)
            left = Binary(left.pos, op, left, right)

    @staticmethod
    def disj_term(x: Node) -> tuple[Node, bool]:
        if isinstance(x, Unary) and x.op == "*":
            return x.x, True
        return x, False

    def unary(self) -> Node:
        t = self.tok
        if t.kind in _UNARY_OPS:
            self.next()
            x = self.unary()
            return Unary(t.pos, t.kind, x)
        return self.primary()

    def primary(self) -> Node:
        x = self.operand()
        start = x.pos  # a call is reported where its whole expression starts
        while True:
            t = self.tok
            if t.kind == ".":
                self.next()
                s = self.tok
                if s.kind == IDENT:
                    self.next()
                    x = Selector(s.pos, x, str(s.val), ident_label(str(s.val)))
                elif s.kind == STRING and s.parts is None:
                    self.next()
                    x = Selector(s.pos, x, str(s.val), str(s.val))
                else:
                    raise syntax_error(s.pos, f"expected selector, found {_describe(s)}")
            elif t.kind == "[":
                self.next()
                index = self.expr()
                if self.is_op(":"):
                    raise unsupported(t.pos, "slice expression 'x[a:b]'")
                if self.is_op(","):
                    self.next()
                self.expect("]", "after index")
                x = Index(t.pos, x, index)
            elif t.kind == "(":
                self.next()
                args: list[Node] = []
                self.skip_commas_implicit()
                while not self.is_op(")"):
                    args.append(self.expr())
                    self.skip_commas_implicit()
                    if self.is_op(")"):
                        break
                    self.expect(",", "in argument list")
                    self.skip_commas_implicit()
                self.next()
                x = Call(start, x, args)
            else:
                return x

    def skip_commas_implicit(self) -> None:
        while self.tok.kind == COMMA and self.tok.implicit:
            self.next()

    def operand(self) -> Node:
        t = self.tok
        k = t.kind
        if k == INT:
            self.next()
            return BasicLit(t.pos, "int", t.val, t.text)
        if k == FLOAT:
            self.next()
            return BasicLit(t.pos, "float", t.val, t.text)
        if k == STRING or k == BYTES:
            self.next()
            return self.string_node(t)
        if k == BOTTOM:
            self.next()
            return BottomLit(t.pos)
        if k == IDENT:
            name = str(t.val)
            if name == "null":
                self.next()
                return BasicLit(t.pos, "null", None)
            if name == "true" or name == "false":
                self.next()
                return BasicLit(t.pos, "bool", name == "true")
            if name in ("for", "if", "let", "in") and self.peek().kind not in (":",):
                raise syntax_error(t.pos, f"unexpected keyword {name}")
            self.next()
            return Ident(t.pos, name)
        if k == "(":
            self.next()
            self.skip_commas_implicit()
            x = self.expr()
            self.skip_commas_implicit()
            self.expect(")", "to close parenthesis")
            return Paren(t.pos, x)
        if k == "{":
            return self.struct_lit()
        if k == "[":
            return self.list_lit()
        raise syntax_error(t.pos, f"expected operand, found {_describe(t)}")

    def string_node(self, t: Token) -> Node:
        is_bytes = t.kind == BYTES
        if t.parts is None:
            if is_bytes:
                return BasicLit(t.pos, "bytes", str(t.val).encode("latin-1"))
            return BasicLit(t.pos, "string", t.val)
        parts: list[object] = []
        for p in t.parts:
            if isinstance(p, str):
                parts.append(p.encode("latin-1") if is_bytes else p)
            else:
                sub = Parser(p, self.filename)
                e = sub.expr()
                if sub.tok.kind != EOF:
                    raise syntax_error(
                        sub.tok.pos, f"unexpected {_describe(sub.tok)} in interpolation"
                    )
                parts.append(e)
        return Interp(t.pos, parts, is_bytes)

    def struct_lit(self) -> StructLit:
        t = self.expect("{", "")
        decls = self.decl_list("}")
        self.next()
        return StructLit(t.pos, decls)

    def list_lit(self) -> ListLit:
        t = self.expect("[", "")
        elems: list[Node] = []
        ellipsis: Ellipsis | None = None
        self.skip_commas_implicit()
        while not self.is_op("]"):
            e = self.tok
            if e.kind == "...":
                self.next()
                expr = None
                if self.tok.kind not in (COMMA, "]"):
                    expr = self.expr()
                ellipsis = Ellipsis(e.pos, expr)
                self.skip_commas()
                if not self.is_op("]"):
                    raise syntax_error(self.tok.pos, "ellipsis must be the last element in a list")
                break
            is_comprehension = e.kind == IDENT and e.val in ("for", "if") and self.starts_clause()
            if is_comprehension:
                elems.append(self.comprehension())
            else:
                elems.append(self.expr())
            if self.is_op("]"):
                break
            c = self.tok
            if c.kind != COMMA:
                raise syntax_error(c.pos, f"missing ',' in list literal (found {_describe(c)})")
            self.next()
            # A comprehension's closing brace ends its element: a newline after it
            # separates elements as a comma does.
            if c.implicit and not is_comprehension and not self.is_op("]"):
                raise syntax_error(self.tok.pos, "missing ',' before newline in list literal")
            while self.tok.kind == COMMA and self.tok.implicit:
                self.next()
        self.next()
        return ListLit(t.pos, elems, ellipsis)


def _bytes_label(t: Token) -> str:
    try:
        return str(t.val).encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        raise syntax_error(t.pos, "invalid label: bytes are not valid UTF-8") from None


def parse(src: str, filename: str) -> File:
    try:
        tokens = tokenize(src, filename)
    except RecursionError:
        raise CueError(f"{filename}: expression nesting too deep") from None
    p = Parser(tokens, filename)
    f = p.parse_file()
    if p.tok.kind != EOF:
        raise syntax_error(p.tok.pos, f"unexpected {_describe(p.tok)}")
    return f
