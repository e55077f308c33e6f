"""The CUE evaluator: vertices, conjuncts, unification, disjunctions, comprehensions.

Model (after CUE's own evaluator):

* A :class:`Vertex` is a node of the value tree (a field, a list element, the file).
  It holds *conjuncts*: expressions together with the environment they were written in.
  Evaluating a vertex unifies all its conjuncts.
* A struct literal evaluated in vertex ``V`` opens an :class:`Env` whose vertex is ``V``;
  each field declaration adds a conjunct to the child vertex (arc) of ``V``. A reference
  resolves lexically to a number of environments up and a label, i.e. to the arc of the
  vertex the literal is evaluated *in*. Unifying a reference means adding the referenced
  vertex's conjuncts, so a template's inner references re-bind to each instance.
* Disjunctions are resolved by evaluating the vertex once per combination of disjuncts;
  failing combinations are dropped, equal results merged and defaults chosen by the
  value/default rules of the CUE specification.
* Referencing a definition closes the structs it contributes: a closedness tree is carried
  with each conjunct and checked once all fields of a vertex are known.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from . import _builtins, _packages
from ._ast import (
    BasicLit,
    Binary,
    BottomLit,
    Call,
    Comprehension,
    DataLit,
    Disjunction,
    Embed,
    Field,
    ForClause,
    Ident,
    IfClause,
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
    ValueLit,
    label_is_definition,
    label_is_regular,
    label_str,
)
from ._errors import CueError, Pos, unsupported
from ._re2 import regex
from ._values import (
    CYCLE,
    EVAL,
    FLOAT,
    INCOMPLETE,
    INT,
    LIST,
    NULLV,
    NUMBER,
    STRING,
    STRUCT,
    STRUCTURAL,
    TOP,
    TOP_KIND,
    BasicType,
    Bottom,
    Bound,
    DataVal,
    Num,
    arith,
    atoms_equal,
    compare_nums,
    data_equal,
    error,
    incomplete,
    is_atom,
    kind_name,
    kind_of,
    negate,
    num_str,
    value_str,
)

UNEVALUATED = 0
EVALUATING = 1
PARTIAL = 2
FINALIZING = 3
FINALIZED = 4

MAX_DEPTH = 400


class Env:
    """A lexical environment: a struct literal evaluated in ``vertex``, or a comprehension
    clause binding ``vals``."""

    __slots__ = ("cyclic", "deref", "lets", "up", "vals", "vertex")

    def __init__(
        self, up: Env | None, vertex: Vertex | None, vals: dict[str, Any] | None = None
    ) -> None:
        self.up = up
        self.vertex = vertex
        self.vals = vals
        self.lets: dict[str, Vertex] | None = None
        # The vertices whose conjuncts were copied (references followed) to reach this
        # environment, and whether one of them was followed twice (a structural cycle
        # in the making).
        if up is not None:
            self.deref: Deref | None = up.deref
            self.cyclic: bool = up.cyclic
        else:
            self.deref = None
            self.cyclic = False

    def derived(self, deref: Deref | None, cyclic: bool) -> Env:
        e = Env(self.up, self.vertex, self.vals)
        e.deref = deref
        e.cyclic = cyclic
        return e


_REF_TYPES = frozenset({Ident, Selector, Index})


class Deref:
    """A linked list of the vertices followed (by reference) to reach a value."""

    __slots__ = ("parent", "vertex")

    def __init__(self, vertex: Vertex, parent: Deref | None) -> None:
        self.vertex = vertex
        self.parent = parent

    def contains(self, w: Vertex) -> bool:
        d: Deref | None = self
        while d is not None:
            if d.vertex is w:
                return True
            d = d.parent
        return False


class CloseNode:
    """A node of the closedness tree: "def" (a referenced definition closes what it
    contributes), "group" (a struct literal with embeddings) or "embed" (an embedding of
    such a literal)."""

    __slots__ = ("kind", "parent")

    def __init__(self, kind: str, parent: CloseNode | None) -> None:
        self.kind = kind
        self.parent = parent


class Record:
    """The labels one struct literal declared in a vertex, for closedness checks."""

    __slots__ = ("ci", "labels", "open", "pos")

    def __init__(
        self, ci: CloseNode | None, labels: set[object], open_: bool, pos: dict[object, Pos] | None
    ) -> None:
        self.ci = ci
        self.labels = labels
        self.open = open_
        self.pos = pos


Conjunct = tuple  # (expr, env, closeinfo, optional)


class Vertex:
    __slots__ = (
        "ambiguous",
        "arcs",
        "bounds",
        "child_err",
        "closed",
        "conjuncts",
        "cycle_dep",
        "defaulted",
        "depth",
        "err",
        "has_top",
        "is_list",
        "is_struct",
        "kind",
        "label",
        "list_open",
        "optional",
        "orig",
        "parent",
        "scalar",
        "stale",
        "status",
        "structs",
    )

    def __init__(self, parent: Vertex | None, label: object) -> None:
        self.parent = parent
        self.label = label
        self.depth: int = parent.depth + 1 if parent is not None else 0
        self.conjuncts: list[Conjunct] = []
        self.arcs: dict[object, Vertex] = {}
        self.status = UNEVALUATED
        self.kind = TOP_KIND
        self.scalar: object = None
        self.bounds: list[Bound] = []
        self.err: Bottom | None = None
        self.child_err: Bottom | None = None
        self.is_struct = False
        self.is_list = False
        self.list_open = False
        self.closed = False
        self.cycle_dep = False
        # The value is the default of a disjunction that has other values.
        self.defaulted = False
        self.stale = False
        self.structs: list[list[object]] = []
        self.optional = False
        self.orig: Vertex | None = None
        self.ambiguous: list[Vertex] | None = None
        self.has_top = False

    def path(self) -> str:
        labels = []
        v: Vertex | None = self
        while v is not None and v.label is not None:
            labels.append(label_str(v.label))
            v = v.parent
        return ".".join(reversed(labels))

    def __repr__(self) -> str:
        return f"<Vertex {self.path() or '<root>'}>"

    def reset(self) -> None:
        self.arcs = {}
        self.closed = False
        self.kind = TOP_KIND
        self.scalar = None
        self.bounds = []
        self.err = None
        self.child_err = None
        self.is_struct = False
        self.is_list = False
        self.list_open = False
        self.structs = []
        self.ambiguous = None
        self.has_top = False
        self.defaulted = False

    def adopt(self, other: Vertex) -> None:
        """Take over the evaluated state of ``other`` (a disjunct evaluated for self)."""
        self.arcs = other.arcs
        self.kind = other.kind
        self.scalar = other.scalar
        self.bounds = other.bounds
        self.err = other.err
        self.child_err = other.child_err
        self.is_struct = other.is_struct
        self.closed = other.closed
        self.is_list = other.is_list
        self.list_open = other.list_open
        self.structs = other.structs
        self.has_top = other.has_top

    def first_pos(self) -> Pos | None:
        for c in self.conjuncts:
            return c[0].pos
        return None


class Package:
    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f'package "{self.path}"'


class NeedChoice(Exception):
    def __init__(self, pending: Pending) -> None:
        super().__init__()
        self.pending = pending


class Pending:
    __slots__ = ("ci", "env", "has_default", "key", "leaves", "pos")

    def __init__(self, node: Disjunction, env: Env | None, ci: CloseNode | None) -> None:
        if node.leaves is None:
            node.leaves = flatten_disjunction(node)
        leaves, has_default = node.leaves
        self.leaves: list[tuple[Node, bool]] = leaves
        self.has_default: bool = has_default
        self.env = env
        self.ci = ci
        self.pos = node.pos
        self.key = id(node)


def default_flags(survivors: list[tuple[tuple[int, ...], list[Pending]]]) -> list[bool]:
    """Which surviving disjunct combinations are defaults.

    Each chosen disjunct is a default (the marked disjuncts of a marked disjunction),
    not a default (its unmarked ones) or neutral (those of an unmarked disjunction); a
    marked disjunction whose marked disjuncts were all eliminated counts as unmarked.
    A combination is a default if it chose at least one default and no non-default,
    or, when no combination did, if it chose only neutral disjuncts. Disjunctions a
    disjunct brings in by reference count like the others, so ``false | b`` with
    ``b: *true | bool`` defaults to true, as in CUE v0.4.
    """
    live: set[tuple[int, int]] = set()
    for choices, pend in survivors:
        for i, p in enumerate(pend):
            if p.has_default and p.leaves[choices[i]][1]:
                live.add((i, p.key))
    modes: list[int] = []  # 0 neutral, 1 default, 2 not a default
    for choices, pend in survivors:
        mode = 0
        for i, p in enumerate(pend):
            if (i, p.key) in live:
                if not p.leaves[choices[i]][1]:
                    mode = 2
                    break
                mode = 1
        modes.append(mode)
    want = 1 if 1 in modes else 0
    return [m == want for m in modes]


def flatten_disjunction(node: Disjunction) -> tuple[list[tuple[Node, bool]], bool]:
    """Leaves of a disjunction with their default marks, following the value/default
    rules of the spec (M1-M3 for marked disjunctions, D0-D2 for unmarked ones)."""
    marked = any(m for _, m in node.terms)
    leaves: list[tuple[Node, bool]] = []
    has_default = False
    for term, m in node.terms:
        inner = term
        while isinstance(inner, Paren):
            inner = inner.x
        if isinstance(inner, Disjunction):
            sub, sub_has = flatten_disjunction(inner)
        else:
            sub, sub_has = [(inner, False)], False
        if marked:
            if m:
                has_default = True
                if sub_has:
                    leaves.extend(sub)
                else:
                    leaves.extend((e, True) for e, _ in sub)
            else:
                leaves.extend((e, False) for e, _ in sub)
        else:
            if sub_has:
                has_default = True
            leaves.extend(sub)
    return leaves, has_default


def env_up(env: Env, n: int) -> Env:
    for _ in range(n):
        assert env.up is not None
        env = env.up
    return env


def let_vertex(env: Env, node: LetDecl) -> Vertex:
    lets = env.lets
    if lets is None:
        lets = env.lets = {}
    v = lets.get(node.name)
    if v is None:
        v = Vertex(env.vertex, "\x00let " + node.name)
        v.conjuncts.append((node.expr, env, None, False))
        lets[node.name] = v
    return v


def temp_vertex(expr: Node, env: Env | None) -> Vertex:
    v = Vertex(None, None)
    v.conjuncts.append((expr, env, None, False))
    return v


# Result tags of ``resolve``.
R_VERTEX = 0
R_VALUE = 1
R_DEFER = 2
R_ERROR = 3


class Evaluator:
    """Evaluation of one file (holds nothing global; builtins are looked up on demand)."""

    def __init__(self) -> None:
        self.builtins = _builtins
        self.stack: list[Vertex] = []
        # The node contexts of vertices being evaluated (also under the vertex a
        # disjunct is evaluated for).
        self.active: dict[int, NodeCtx] = {}

    # ================================================================ vertices
    def evaluate(self, v: Vertex) -> None:
        """Evaluate ``v`` to the point where its value and arcs are known."""
        if v.status != UNEVALUATED:
            return
        if v.stale:
            v.stale = False
            v.reset()
        if v.depth > MAX_DEPTH:
            v.status = FINALIZED
            v.err = Bottom(STRUCTURAL, "structural cycle (value nested too deeply)", v.first_pos())
            return
        conj = v.conjuncts
        if len(conj) == 1 and type(conj[0][0]) is BasicLit:
            # A literal leaf (most vertices of a spec): no unification needed.
            atom = lit_value(conj[0][0])
            v.scalar = atom
            v.kind = kind_of(atom)
            v.status = FINALIZED
            return
        v.status = EVALUATING
        stack = self.stack
        stack.append(v)
        try:
            NodeCtx(self, v, ()).run()
        except NeedChoice as nc:
            self.expand_disjunctions(v, nc.pending)
        finally:
            stack.pop()
        if v.status == EVALUATING:
            v.status = PARTIAL
        if v.cycle_dep:
            # The value was computed while reading a vertex still being evaluated:
            # keep it for the reader, but compute it again on the next access.
            v.cycle_dep = False
            v.stale = True
            v.status = UNEVALUATED

    def cycle_read(self, w: Vertex) -> None:
        """A vertex being evaluated is read: values evaluated meanwhile that do not
        belong to it are provisional."""
        for u in reversed(self.stack):
            if u is w or u.orig is w:
                return
            p: Vertex | None = u
            while p is not None and p is not w and p.orig is not w:
                p = p.parent
            if p is None:
                u.cycle_dep = True

    def finalize(self, v: Vertex) -> None:
        """Evaluate ``v`` and, recursively, all its fields."""
        if v.status < PARTIAL:
            self.evaluate(v)
            if v.stale:
                return
        if v.status >= FINALIZING:
            return
        v.status = FINALIZING
        for arc in list(v.arcs.values()):
            if arc.optional:
                continue
            self.finalize(arc)
            err = arc.err
            if err is not None and err.fatal:
                if v.child_err is None:
                    v.child_err = err
            elif arc.child_err is not None and v.child_err is None:
                v.child_err = arc.child_err
        v.status = FINALIZED

    def expand_disjunctions(self, v: Vertex, first: Pending) -> None:
        v.reset()
        survivors: list[tuple[Vertex, tuple[int, ...], list[Pending]]] = []
        failures: list[Bottom] = []
        stack: list[tuple[int, ...]] = [(i,) for i in reversed(range(len(first.leaves)))]
        while stack:
            choices = stack.pop()
            c = Vertex(v.parent, v.label)
            c.depth = v.depth
            c.conjuncts = v.conjuncts
            c.orig = v.orig if v.orig is not None else v
            c.status = EVALUATING
            nc = NodeCtx(self, c, choices)
            try:
                nc.run()
            except NeedChoice as e:
                stack.extend((*choices, i) for i in reversed(range(len(e.pending.leaves))))
                continue
            c.status = PARTIAL
            if c.err is None:
                self.finalize(c)
            else:
                c.status = FINALIZED
            # Errors of the disjunct itself eliminate it, also incomplete ones (an
            # undefined field); of its fields only permanent errors do.
            bad = c.err if c.err is not None and c.err.code != CYCLE else c.child_err
            if bad is not None:
                failures.append(bad)
                continue
            survivors.append((c, choices, nc.pending))
        v.status = FINALIZED
        if not survivors:
            if failures:
                first_err = failures[0]
                code = EVAL if any(f.fatal for f in failures) else INCOMPLETE
                msg = first_err.msg
                if len(failures) > 1:
                    msg = f"{len(failures)} errors in empty disjunction: {msg}"
                v.err = Bottom(code, msg, first_err.pos)
            else:
                v.err = error("empty disjunction", first.pos)
            return
        flags = default_flags([(choices, pend) for _c, choices, pend in survivors])
        uniq: list[list[Any]] = []
        for (c, _ch, _p), is_default in zip(survivors, flags, strict=True):
            for u in uniq:
                if vertices_equal(u[0], c):
                    u[1] = u[1] or is_default
                    break
            else:
                uniq.append([c, is_default])
        if len(uniq) == 1:
            v.adopt(uniq[0][0])
            return
        defaults = [u[0] for u in uniq if u[1]]
        if len(defaults) == 1 and len(defaults) < len(uniq):
            v.adopt(defaults[0])
            v.defaulted = True
            return
        alts = defaults if len(defaults) > 1 else [u[0] for u in uniq]
        v.ambiguous = alts
        v.err = incomplete(
            "incomplete value " + " | ".join(short_str(a) for a in alts), v.first_pos()
        )

    # ============================================================== references
    def resolve(self, expr: Node, env: Env | None) -> tuple | None:
        """Resolve a reference-like expression. Returns (R_VERTEX, vertex, is_def),
        (R_VALUE, value), (R_DEFER, bottom) or (R_ERROR, bottom); None if ``expr`` is
        not a reference."""
        if isinstance(expr, Ident):
            return self.resolve_ident(expr, env)
        if isinstance(expr, Selector):
            return self.resolve_selector(expr, env)
        if isinstance(expr, Index):
            return self.resolve_index(expr, env)
        if isinstance(expr, Paren):
            return self.resolve(expr.x, env)
        return None

    def resolve_ident(self, expr: Ident, env: Env | None) -> tuple:
        k = expr.kind
        if k == "field":
            assert env is not None
            e = env_up(env, expr.up)
            assert e.vertex is not None
            arc = e.vertex.arcs.get(expr.key)
            if arc is None:
                return (R_DEFER, incomplete(f"reference {expr.name} not yet available", expr.pos))
            if arc.optional:
                # Resolved when evaluated: another conjunct (``#M & {m: 1}``) may still
                # make the field regular.
                return (
                    R_DEFER,
                    incomplete(f"cannot reference optional field {expr.name}", expr.pos),
                )
            return (R_VERTEX, arc, label_is_definition(expr.key))
        if k == "let":
            assert env is not None
            e = env_up(env, expr.up)
            if e.vals is not None:
                return (R_VERTEX, e.vals[expr.name], False)
            assert isinstance(expr.target, LetDecl)
            return (R_VERTEX, let_vertex(e, expr.target), False)
        if k == "var":
            assert env is not None
            e = env_up(env, expr.up)
            assert e.vals is not None
            val = e.vals[expr.name]
            if isinstance(val, Vertex):
                return (R_VERTEX, val, False)
            return (R_VALUE, val)
        if k == "top":
            return (R_VALUE, TOP)
        if k == "builtin":
            return (R_VALUE, self.builtins.builtin_value(expr.name, expr.pos))
        if k == "import":
            assert isinstance(expr.key, str)
            return (R_VALUE, Package(expr.key))
        raise CueError(f"{expr.pos}: unresolved reference {expr.name}")

    def resolve_selector(self, expr: Selector, env: Env | None) -> tuple:
        base = self.resolve_base(expr.x, env)
        if base[0] == R_VALUE:
            val = base[1]
            if isinstance(val, Package):
                member = _packages.member(val.path, expr.name, expr.pos)
                if isinstance(member, Node):  # a struct of CUE (list.Comparer)
                    return (R_VERTEX, temp_vertex(member, None), False)
                return (R_VALUE, member)
            if isinstance(val, Bottom):
                return (R_DEFER if not val.fatal else R_ERROR, val)
            if val is TOP or isinstance(val, BasicType):
                return (
                    R_DEFER,
                    incomplete(f"invalid selector {expr.name} on incomplete value", expr.pos),
                )
            return (R_ERROR, error(f"invalid selector {expr.name} on {value_str(val)}", expr.pos))
        if base[0] != R_VERTEX:
            return base
        arc = self.select(base[1], expr.key, expr.pos)
        if isinstance(arc, Bottom):
            return (R_DEFER if not arc.fatal else R_ERROR, arc)
        return (R_VERTEX, arc, base[2] or label_is_definition(expr.key))

    def resolve_index(self, expr: Index, env: Env | None) -> tuple:
        base = self.resolve_base(expr.x, env)
        if base[0] == R_VALUE:
            val = base[1]
            if isinstance(val, Bottom):
                return (R_DEFER if not val.fatal else R_ERROR, val)
            if val is TOP or isinstance(val, BasicType):
                return (R_DEFER, incomplete("index of incomplete value", expr.pos))
            return (R_ERROR, error(f"invalid operand {value_str(val)} for index", expr.pos))
        if base[0] != R_VERTEX:
            return base
        ipos = expr.index.pos
        idx = self.eval_expr(expr.index, env)
        if isinstance(idx, Bottom):
            return (R_DEFER if not idx.fatal else R_ERROR, idx)
        key: object
        if isinstance(idx, Num):
            if idx.kind != INT:
                return (R_ERROR, error(f"invalid index {value_str(idx)} (must be int)", ipos))
            key = int(idx.d)
        elif isinstance(idx, str):
            key = idx
        elif idx is TOP or isinstance(idx, (BasicType, Bound)):
            return (R_DEFER, incomplete("non-concrete index", ipos))
        else:
            return (R_ERROR, error(f"invalid index {value_str(idx)}", ipos))
        arc = self.select(base[1], key, ipos)
        if isinstance(arc, Bottom):
            return (R_DEFER if not arc.fatal else R_ERROR, arc)
        return (R_VERTEX, arc, base[2])

    def resolve_base(self, expr: Node, env: Env | None) -> tuple:
        r: tuple | None = self.resolve(expr, env)
        if r is not None:
            if r[0] == R_VALUE and isinstance(r[1], DataVal):
                return (R_VERTEX, self.data_vertex(r[1], expr.pos), False)
            return r
        val = self.eval_expr(expr, env)
        if isinstance(val, Vertex):
            return (R_VERTEX, val, False)
        if isinstance(val, DataVal):
            return (R_VERTEX, self.data_vertex(val, expr.pos), False)
        return (R_VALUE, val)

    def data_vertex(self, d: DataVal, pos: Pos) -> Vertex:
        return temp_vertex(data_to_ast(d.data, pos), None)

    def select(self, w: Vertex, key: object, pos: Pos) -> Vertex | Bottom:
        if w.status == EVALUATING:
            self.cycle_read(w)
        self.evaluate(w)
        if w.err is not None and w.status != EVALUATING:
            return w.err
        cyclic = w.status == EVALUATING
        if w.ambiguous is not None:
            return incomplete(
                "selector on an unresolved disjunction "
                + " | ".join(short_str(a) for a in w.ambiguous),
                pos,
            )
        arc = w.arcs.get(key)
        if arc is None or arc.optional:
            if isinstance(key, int):
                if w.is_list:
                    n = sum(1 for k in w.arcs if isinstance(k, int))
                    if w.list_open:
                        return incomplete(
                            f"index {key} out of range (open list of length {n})", pos
                        )
                    return error(f"index {key} out of range (list of length {n})", pos)
                if w.is_struct or w.scalar is not None or not w.kind & LIST:
                    return error(f"invalid index {key} of non-list value", pos)
                return incomplete(f"index {key} of incomplete value", pos)
            if w.scalar is not None or w.is_list or not w.kind & STRUCT:
                return error(
                    f"invalid selector {label_str(key)} (found {kind_name(w.kind)}, want struct)",
                    pos,
                )
            if cyclic:
                return Bottom(CYCLE, f"cycle error: field {label_str(key)} not known yet", pos)
            if w.closed:
                return error(f"undefined field: {label_str(key)}", pos)
            return incomplete(f"undefined field: {label_str(key)}", pos)
        return arc

    # ================================================================== values
    def value_of(self, w: Vertex, pos: Pos | None = None) -> object:
        """The value of a vertex for use in an expression (defaults resolved)."""
        if w.status == EVALUATING:
            nc = self.active.get(id(w))
            if nc is not None and nc.scalar is not None and not nc.errs:
                # A value refers to itself: use what is known of it so far (as cue does).
                return nc.scalar
            self.cycle_read(w)
            return Bottom(CYCLE, "cycle error", pos or w.first_pos())
        self.evaluate(w)
        if w.err is not None:
            return w.err
        if w.scalar is not None:
            return w.scalar
        if w.is_struct or w.is_list:
            return w
        if w.bounds:
            return (
                w.bounds[0]
                if len(w.bounds) == 1 and w.kind & w.bounds[0].kind == w.kind
                else BasicType(w.kind)
            )
        if w.kind == TOP_KIND:
            return TOP
        return BasicType(w.kind)

    def eval_expr(self, expr: Node, env: Env | None) -> object:
        if isinstance(expr, BasicLit):
            return lit_value(expr)
        if isinstance(expr, (Ident, Selector, Index)):
            r = self.resolve(expr, env)
            assert r is not None
            if r[0] == R_VERTEX:
                return self.value_of(r[1], expr.pos)
            return r[1]
        if isinstance(expr, Paren):
            return self.eval_expr(expr.x, env)
        if isinstance(expr, Binary):
            return self.eval_binary(expr, env)
        if isinstance(expr, Unary):
            return self.eval_unary(expr, env)
        if isinstance(expr, Interp):
            return self.eval_interp(expr, env)
        if isinstance(expr, Call):
            return self.eval_call(expr, env)
        if isinstance(expr, DataLit):
            d = expr.value
            return DataVal(d) if isinstance(d, (list, dict)) else d
        if isinstance(expr, BottomLit):
            return error("explicit error (_|_ literal) in source", expr.pos)
        # Struct and list literals, disjunctions: evaluate in a temporary vertex.
        w = temp_vertex(expr, env)
        return self.value_of(w, expr.pos)

    def concrete(self, val: object, what: str, pos: Pos) -> object:
        """``val`` if it is an atom (or a struct/list vertex), else an error value."""
        if isinstance(val, Bottom):
            return val
        if val is TOP or isinstance(val, (BasicType, Bound)):
            return incomplete(f"non-concrete value {value_str(val)} in {what}", pos)
        return val

    def eval_unary(self, expr: Unary, env: Env | None) -> object:
        op = expr.op
        if op == "*":
            return error("preference mark not allowed at this position", expr.pos)
        x = self.eval_expr(expr.x, env)
        if op in ("<", "<=", ">", ">=", "!=", "=~", "!~", "=="):
            x = self.concrete(x, f"bound {op}", expr.pos)
            if isinstance(x, Bottom):
                return x
            if not is_atom(x):
                return error(f"invalid operand for bound {op}", expr.pos)
            if op in ("=~", "!~") and not isinstance(x, str):
                return error(f"invalid regular expression {value_str(x)}", expr.pos)
            if op in ("<", "<=", ">", ">=") and not isinstance(x, (Num, str, bytes)):
                return error(f"invalid bound {op}{value_str(x)}", expr.pos)
            if op == "==":
                return x
            return Bound(op, x)
        x = self.concrete(x, f"operand to {op}", expr.pos)
        if isinstance(x, Bottom):
            return x
        if op == "-":
            if isinstance(x, Num):
                return negate(x)
            return error(f"invalid operand {value_str(x)} to unary -", expr.pos)
        if op == "+":
            if isinstance(x, Num):
                return x
            return error(f"invalid operand {value_str(x)} to unary +", expr.pos)
        if op == "!":
            if isinstance(x, bool):
                return not x
            return error(f"invalid operand {value_str(x)} to '!' (must be bool)", expr.pos)
        return error(f"unknown operator {op}", expr.pos)

    def eval_binary(self, expr: Binary, env: Env | None) -> object:
        op = expr.op
        if op == "&":
            return self.value_of(temp_vertex(expr, env), expr.pos)
        if op == "&&" or op == "||":
            x = self.concrete(self.eval_expr(expr.x, env), f"operand to {op}", expr.pos)
            if isinstance(x, Bottom):
                return x
            if not isinstance(x, bool):
                return error(f"invalid operand {short_val(x)} to '{op}' (must be bool)", expr.pos)
            if op == "&&" and not x:
                return False
            if op == "||" and x:
                return True
            y = self.concrete(self.eval_expr(expr.y, env), f"operand to {op}", expr.pos)
            if isinstance(y, Bottom):
                return y
            if not isinstance(y, bool):
                return error(f"invalid operand {short_val(y)} to '{op}' (must be bool)", expr.pos)
            return y
        x = self.concrete(self.eval_expr(expr.x, env), f"operand to {op}", expr.pos)
        if isinstance(x, Bottom):
            return self.at(x, expr.pos)
        y = self.concrete(self.eval_expr(expr.y, env), f"operand to {op}", expr.pos)
        if isinstance(y, Bottom):
            return self.at(y, expr.pos)
        return self.binop(op, x, y, expr.pos)

    @staticmethod
    def at(b: Bottom, pos: Pos) -> Bottom:
        if b.pos is None:
            return Bottom(b.code, b.msg, pos)
        return b

    def binop(self, op: str, x: object, y: object, pos: Pos) -> object:
        if op in ("==", "!="):
            eq = self.equal_values(x, y, op, pos)
            if isinstance(eq, Bottom):
                return eq
            return eq if op == "==" else not eq
        if isinstance(x, Num) and isinstance(y, Num):
            if op in ("<", "<=", ">", ">="):
                c = compare_nums(x, y)
                return _cmp(op, c)
            r = arith(op, x, y)
            if r is None:
                return error(f"invalid operator {op} for numbers", pos)
            if isinstance(r, Bottom):
                return Bottom(r.code, r.msg, pos)
            return r
        if isinstance(x, str) and isinstance(y, str):
            if op == "+":
                return x + y
            if op in ("<", "<=", ">", ">="):
                bx, by = x.encode(), y.encode()
                return _cmp(op, (bx > by) - (bx < by))
            if op in ("=~", "!~"):
                try:
                    m = regex(y, pos).search(x) is not None
                except re.error as e:
                    return error(f"invalid regular expression {y!r}: {e}", pos)
                return m if op == "=~" else not m
        if isinstance(x, bytes) and isinstance(y, bytes):
            if op == "+":
                return x + y
            if op in ("<", "<=", ">", ">="):
                return _cmp(op, (x > y) - (x < y))
        if op == "*":
            if isinstance(x, bytes) and isinstance(y, Num) and y.kind == INT:
                return x * max(int(y.d), 0)
            if isinstance(y, bytes) and isinstance(x, Num) and x.kind == INT:
                return y * max(int(x.d), 0)
            if isinstance(x, str) and isinstance(y, Num) and y.kind == INT:
                return x * max(int(y.d), 0)
            if isinstance(y, str) and isinstance(x, Num) and x.kind == INT:
                return y * max(int(x.d), 0)
        if op in ("+", "*") and (_is_list(x) or _is_list(y)):
            return self.list_op(op, x, y, pos)
        return error(
            f"invalid operands {short_val(x)} and {short_val(y)} to '{op}' "
            f"(type {type_name(x)} and {type_name(y)})",
            pos,
        )

    def list_op(self, op: str, x: object, y: object, pos: Pos) -> object:
        """List concatenation (``+``) and repetition (``*`` by an int), which CUE v0.4
        still supports."""
        if op == "*":
            lst, n = (x, y) if _is_list(x) else (y, x)
            if not (isinstance(n, Num) and n.kind == INT):
                return error(
                    f"invalid operands to '*' (want list and int, got {type_name(n)})", pos
                )
            items = self.to_data_value(lst, pos)
            if isinstance(items, Bottom):
                return items
            assert isinstance(items, list)
            return DataVal(items * max(int(n.d), 0))
        if not (_is_list(x) and _is_list(y)):
            return error(f"invalid operands to '+' (type {type_name(x)} and {type_name(y)})", pos)
        dx = self.to_data_value(x, pos)
        if isinstance(dx, Bottom):
            return dx
        dy = self.to_data_value(y, pos)
        if isinstance(dy, Bottom):
            return dy
        assert isinstance(dx, list) and isinstance(dy, list)
        return DataVal(dx + dy)

    def equal_values(self, x: object, y: object, op: str, pos: Pos) -> bool | Bottom:
        if is_atom(x) and is_atom(y):
            if isinstance(x, Num) and isinstance(y, Num):
                return compare_nums(x, y) == 0
            if x is NULLV or y is NULLV:
                return x is y
            if type(x) is not type(y):
                return error(
                    f"invalid operands {short_val(x)} and {short_val(y)} to '{op}' "
                    f"(type {type_name(x)} and {type_name(y)})",
                    pos,
                )
            return x == y
        if x is NULLV or y is NULLV:
            return False
        dx = self.to_data_value(x, pos)
        if isinstance(dx, Bottom):
            return dx
        dy = self.to_data_value(y, pos)
        if isinstance(dy, Bottom):
            return dy
        if isinstance(dx, list) and isinstance(dy, list):
            return data_equal(dx, dy)
        return error(
            f"invalid operands {short_val(x)} and {short_val(y)} to '{op}' "
            f"(type {type_name(x)} and {type_name(y)})",
            pos,
        )

    def eval_interp(self, expr: Interp, env: Env | None) -> object:
        out: list[str] = []
        for p in expr.parts:
            if isinstance(p, bytes):
                out.append(p.decode("latin-1"))
                continue
            if isinstance(p, str):
                out.append(p)
                continue
            assert isinstance(p, Node)
            val = self.concrete(self.eval_expr(p, env), "interpolation", p.pos)
            if isinstance(val, Bottom):
                return self.at(val, expr.pos)
            if isinstance(val, str):
                out.append(val.encode().decode("latin-1") if expr.is_bytes else val)
            elif isinstance(val, bytes):
                out.append(val.decode("latin-1") if expr.is_bytes else val.decode(errors="replace"))
            elif isinstance(val, Num):
                out.append(num_str(val))
            elif isinstance(val, bool):
                out.append("true" if val else "false")
            else:
                return error(
                    f"invalid interpolation: cannot use {short_val(val)} (type {type_name(val)}) "
                    "as type (bool|string|bytes|number)",
                    expr.pos,
                )
        if expr.is_bytes:
            return "".join(out).encode("latin-1")
        return "".join(out)

    def eval_call(self, expr: Call, env: Env | None) -> object:
        fn = self.eval_expr(expr.fn, env)
        if isinstance(fn, Bottom):
            return Bottom(fn.code, f"cannot call {fn.msg}", expr.pos)
        if not isinstance(fn, self.builtins.Builtin):
            return error(f"cannot call non-function {short_val(fn)}", expr.pos)
        args = [self.eval_expr(a, env) for a in expr.args]
        texts = None
        if fn.name.startswith("yaml.Marshal"):
            texts = [self.literal_text(a, env) for a in expr.args]
        return self.builtins.call(self, fn, args, expr.pos, [a.pos for a in expr.args], texts)

    def literal_text(self, expr: Node, env: Env | None) -> str | None:
        """The source text of a number literal ``expr``, or of the number literal that is
        the only conjunct of the field ``expr`` refers to (CUE v0.4's yaml.Marshal writes
        such a number as it is spelled: ``1e10``, ``0x10``)."""
        if isinstance(expr, BasicLit):
            return expr.text
        r = self.resolve(expr, env)
        if r is not None and r[0] == R_VERTEX:
            return _sole_literal_text(r[1])
        return None

    def literal_texts(self, val: object) -> dict[tuple[object, ...], str]:
        """The source texts of the numbers in value ``val`` that are list elements given
        by a literal alone, by path (yaml.Marshal writes them as spelled; struct fields
        are written as computed)."""
        out: dict[tuple[object, ...], str] = {}

        def walk(w: Vertex, path: tuple[object, ...]) -> None:
            for k, arc in w.arcs.items():
                if isinstance(k, int):
                    text = _sole_literal_text(arc)
                    if text is not None:
                        out[(*path, k)] = text
                        continue
                elif not label_is_regular(k) or arc.optional:
                    continue
                if arc.is_list or arc.is_struct:
                    walk(arc, (*path, k))

        if isinstance(val, Vertex):
            self.finalize(val)
            walk(val, ())
        return out

    # ------------------------------------------------------------ conversion
    def length_of(self, v: object) -> int | None:
        """``len`` of a list or struct value (its regular fields), None for others."""
        if isinstance(v, Vertex):
            if v.is_list:
                return sum(1 for k in v.arcs if isinstance(k, int))
            if v.is_struct:
                return sum(1 for k, a in v.arcs.items() if label_is_regular(k) and not a.optional)
        return None

    def defaulted_elements(self, v: object) -> list[tuple[int, str]]:
        """The index and text of each element of list ``v`` whose value is the default
        of a disjunction (CUE v0.4's builtins do not take the defaults of the elements
        of their number and string list arguments, nor of list.Contains's list)."""
        if isinstance(v, Vertex) and v.is_list:
            return [
                (k, short_str(arc))
                for k, arc in v.arcs.items()
                if isinstance(k, int) and arc.defaulted
            ]
        return []

    def expr_value(self, expr: Node) -> object:
        """The value of a syntax tree a builtin made (``yaml.Unmarshal``'s document):
        evaluated like source, so repeated fields unify and ``_x`` fields are hidden."""
        return self.value_of(temp_vertex(expr, None), expr.pos)

    def unify_error(self, expr: Node, schema: object, pos: Pos, concrete: bool) -> Bottom | None:
        """The error of ``expr`` alone, else of ``expr`` unified with ``schema`` (with
        incomplete values an error only if ``concrete``), or None (``yaml.Validate``)."""
        err = self.tree_error(temp_vertex(expr, None), pos, False)
        if err is not None:
            return err
        is_def = isinstance(schema, Vertex) and in_definition(schema)
        w = temp_vertex(expr, None)
        w.conjuncts.append((ValueLit(pos, schema, is_def), None, None, False))
        return self.tree_error(w, pos, concrete)

    def fill_select(self, base: object, fills: dict[str, object], name: str, pos: Pos) -> object:
        """Field ``name`` of ``base`` unified with the data values ``fills`` (CUE's
        ``v.Fill(a, "x").Fill(b, "y").Lookup("less")`` in list.Sort)."""
        fields: list[Node] = [
            Field(pos, Label(pos, "ident", k), DataLit(pos, v), False) for k, v in fills.items()
        ]
        w = temp_vertex(StructLit(pos, fields), None)
        w.conjuncts.append((ValueLit(pos, base, False), None, None, False))
        arc = self.select(w, Label(pos, "ident", name).key, pos)
        return arc if isinstance(arc, Bottom) else self.value_of(arc, pos)

    def argument_error(self, val: object, i: int, name: str, pos: Pos) -> Bottom | None:
        """CUE v0.4 refuses an open list or an unresolved disjunction as a value argument."""
        if isinstance(val, Vertex):
            self.evaluate(val)
            if val.ambiguous is not None:
                return incomplete(
                    "unresolved disjunction " + " | ".join(short_str(a) for a in val.ambiguous),
                    pos,
                )
            if val.is_list and val.list_open:
                return incomplete(f"non-concrete argument {i} to {name}", pos)
        return None

    def tree_error(self, w: Vertex, pos: Pos, concrete: bool) -> Bottom | None:
        self.finalize(w)
        if w.err is not None and (concrete or w.err.fatal):
            return w.err
        if w.child_err is not None:
            return w.child_err
        if concrete:
            d = self.to_data(w, pos)
            if isinstance(d, Bottom):
                return d
        return None

    def to_data_value(self, val: object, pos: Pos) -> object:
        """Python data (lists, dicts of atoms) of a concrete value, or an error value."""
        if isinstance(val, DataVal):
            return val.data
        if isinstance(val, Vertex):
            return self.to_data(val, pos)
        val = self.concrete(val, "value", pos)
        return val

    def to_data(self, w: Vertex, pos: Pos) -> object:
        self.finalize(w)
        if w.err is not None:
            return w.err
        if w.child_err is not None:
            return w.child_err
        if w.ambiguous is not None:
            return incomplete("unresolved disjunction", pos)
        if w.is_list:
            out_l: list[object] = []
            for k, arc in w.arcs.items():
                if isinstance(k, int):
                    d = self.to_data(arc, pos)
                    if isinstance(d, Bottom):
                        return d
                    out_l.append(d)
            return out_l
        if w.is_struct:
            out_d: dict[str, object] = {}
            for k in ordered_labels(w):
                arc = w.arcs[k]
                if label_is_regular(k) and not arc.optional:
                    d = self.to_data(arc, pos)
                    if isinstance(d, Bottom):
                        return d
                    out_d[str(k)] = d
            return out_d
        if w.scalar is not None:
            return w.scalar
        return incomplete(f"incomplete value {short_str(w)}", pos)

    # ============================================================ iteration
    def iterate(self, src: object, pos: Pos) -> list[tuple[object, object]] | Bottom:
        """(key, value) pairs of a list or struct for a ``for`` clause."""
        if isinstance(src, DataVal):
            src = self.value_of(self.data_vertex(src, pos), pos)
        if isinstance(src, Bottom):
            return src
        if isinstance(src, Vertex):
            if src.is_list:
                return [
                    (Num(INT, _dec(k)), arc) for k, arc in src.arcs.items() if isinstance(k, int)
                ]
            # Only regular fields are iterated, and their key is the label's name as
            # data (``"@type"``, ``"12"``), never its quoted display form.
            return [
                (k, arc) for k, arc in src.arcs.items() if label_is_regular(k) and not arc.optional
            ]
        if src is TOP or isinstance(src, (BasicType, Bound)):
            return incomplete("cannot range over incomplete value", pos)
        return error(
            f"cannot range over {short_val(src)} (found {type_name(src)}, want list or struct)", pos
        )


def _dec(i: int) -> Decimal:
    return Decimal(i)


def _sole_literal_text(w: Vertex) -> str | None:
    """The text of the one number literal among ``w``'s own conjuncts (not through
    references: ``[X]`` is written as computed, ``[1e10] & [number]`` as spelled)."""
    lits = [c[0] for c in w.conjuncts if type(c[0]) is BasicLit and c[0].kind in ("int", "float")]
    return lits[0].text if len(lits) == 1 else None


def _is_list(v: object) -> bool:
    return (isinstance(v, Vertex) and v.is_list) or (
        isinstance(v, DataVal) and isinstance(v.data, list)
    )


def _cmp(op: str, c: int) -> bool:
    if op == "<":
        return c < 0
    if op == "<=":
        return c <= 0
    if op == ">":
        return c > 0
    return c >= 0


def lit_value(node: BasicLit) -> object:
    v = node.atom
    if v is not None:
        return v
    v = node.atom = _lit_value(node)
    return v


def _lit_value(node: BasicLit) -> object:
    k = node.kind
    if k == "int":
        assert isinstance(node.value, int)
        return Num(INT, _dec(node.value))
    if k == "float":
        assert isinstance(node.value, Decimal)
        return Num(FLOAT, node.value)
    if k == "string" or k == "bytes":
        return node.value
    if k == "bool":
        return node.value
    return NULLV


def type_name(v: object) -> str:
    if isinstance(v, Vertex):
        return "list" if v.is_list else "struct"
    if isinstance(v, DataVal):
        return "list" if isinstance(v.data, list) else "struct"
    if is_atom(v):
        return kind_name(kind_of(v))
    if isinstance(v, BasicType):
        return kind_name(v.kind)
    return "_"


def short_val(v: object) -> str:
    if isinstance(v, Vertex):
        return short_str(v)
    if isinstance(v, DataVal):
        return "[...]" if isinstance(v.data, list) else "{...}"
    return value_str(v)


def short_str(v: Vertex) -> str:
    if v.ambiguous is not None:
        return " | ".join(short_str(a) for a in v.ambiguous)
    if v.scalar is not None:
        return value_str(v.scalar)
    if v.is_list:
        items = [short_str(a) for k, a in v.arcs.items() if isinstance(k, int)]
        return "[" + ",".join(items) + "]"
    if v.is_struct:
        items = [f"{label_str(k)}:{short_str(a)}" for k, a in v.arcs.items() if not a.optional]
        return "{" + ",".join(items) + "}"
    if v.err is not None:
        return "_|_"
    parts = [repr(b) for b in v.bounds]
    if v.kind != TOP_KIND or not parts:
        if not (parts and v.kind & ~(NUMBER | STRING) == 0):
            parts.insert(0, kind_name(v.kind))
    return " & ".join(parts)


def vertices_equal(a: Vertex, b: Vertex) -> bool:
    if a.err is not None or b.err is not None:
        return False
    if a.is_list != b.is_list or a.is_struct != b.is_struct:
        return False
    if a.scalar is not None or b.scalar is not None:
        if a.scalar is None or b.scalar is None:
            return False
        if kind_of(a.scalar) != kind_of(b.scalar) or not atoms_equal(a.scalar, b.scalar):
            return False
    elif not (a.is_list or a.is_struct):
        if a.kind != b.kind or [repr(x) for x in a.bounds] != [repr(x) for x in b.bounds]:
            return False
    ka = [k for k, arc in a.arcs.items() if not arc.optional]
    kb = [k for k, arc in b.arcs.items() if not arc.optional]
    if set(ka) != set(kb):
        return False
    return all(vertices_equal(a.arcs[k], b.arcs[k]) for k in ka)


def data_to_ast(data: object, pos: Pos) -> Node:
    """Splice Python data computed by a builtin back into the tree as literals."""
    if isinstance(data, list):
        return ListLit(pos, [data_to_ast(x, pos) for x in data], None)
    if isinstance(data, dict):
        from ._ast import Label

        fields: list[Node] = [
            Field(pos, Label(pos, "string", str(k)), data_to_ast(v, pos), False)
            for k, v in data.items()
        ]
        return StructLit(pos, fields)
    return DataLit(pos, data)


class NodeCtx:
    """The state of unifying the conjuncts of one vertex (one disjunct combination)."""

    __slots__ = (
        "bounds",
        "choices",
        "dynamic",
        "errs",
        "ev",
        "exprs",
        "fors",
        "has_cycle",
        "has_noncycle",
        "has_top",
        "ifs",
        "is_struct",
        "kind",
        "kind_src",
        "list_closed",
        "list_max",
        "list_opens",
        "lists",
        "pending",
        "records",
        "scalar",
        "scalar_pos",
        "seen",
        "struct_pos",
        "structs",
        "v",
    )

    def __init__(self, ev: Evaluator, v: Vertex, choices: tuple[int, ...]) -> None:
        self.ev = ev
        self.v = v
        self.choices = choices
        self.kind = TOP_KIND
        self.kind_src: object = None
        self.scalar: object = None
        self.scalar_pos: Pos | None = None
        self.bounds: list[Bound] = []
        self.has_top = False
        self.has_cycle = False
        self.has_noncycle = False
        self.is_struct = False
        self.struct_pos: Pos | None = None
        self.lists: list[tuple[Node, Env | None, CloseNode | None]] = []
        self.list_closed: int | None = None
        self.list_max = 0
        self.list_opens: list[list[Any]] = []
        self.dynamic: list[tuple[Field, Env, CloseNode | None, Record]] = []
        self.ifs: list[tuple[Comprehension, Env, CloseNode | None]] = []
        self.fors: list[tuple[Comprehension, Env, CloseNode | None]] = []
        self.exprs: list[tuple[Node, Env | None, CloseNode | None, Bottom]] = []
        self.pending: list[Pending] = []
        self.seen: set[tuple[int, int]] = set()
        self.records: list[Record] = []
        self.errs: list[Bottom] = []
        self.structs: list[list[object]] = []

    # ---------------------------------------------------------------- driver
    def run(self) -> None:
        v = self.v
        active = self.ev.active
        keys = [id(v)] if v.orig is None else [id(v), id(v.orig)]
        saved = [active.get(k) for k in keys]
        for k in keys:
            active[k] = self
        try:
            self.unify()
        finally:
            for k, old in zip(keys, saved, strict=True):
                if old is None:
                    active.pop(k, None)
                else:
                    active[k] = old

    def unify(self) -> None:
        v = self.v
        conj = v.conjuncts
        i = 0
        while i < len(conj):
            expr, env, ci, _opt = conj[i]
            self.add_conjunct(expr, env, ci)
            i += 1
        self.expand()
        k = 0
        while k < len(self.pending):
            if k >= len(self.choices):
                raise NeedChoice(self.pending[k])
            p = self.pending[k]
            leaf = p.leaves[self.choices[k]][0]
            self.add_conjunct(leaf, p.env, p.ci)
            self.expand()
            k += 1
        # Lists are put together once all conjuncts (also the chosen disjuncts) are in.
        while self.lists:
            self.add_lists()
            self.expand()
        self.finish()

    def add_err(self, b: Bottom) -> None:
        self.errs.append(b)

    # ------------------------------------------------------------- conjuncts
    def add_conjunct(self, expr: Node, env: Env | None, ci: CloseNode | None) -> None:
        if isinstance(expr, StructLit):
            self.add_struct(expr, env, ci)
        elif isinstance(expr, ListLit):
            if env is not None and env.cyclic:
                self.has_cycle = True
            else:
                self.has_noncycle = True
            self.lists.append((expr, env, ci))
        elif isinstance(expr, Disjunction):
            self.pending.append(Pending(expr, env, ci))
        elif isinstance(expr, Binary) and expr.op == "&":
            self.add_conjunct(expr.x, env, ci)
            self.add_conjunct(expr.y, env, ci)
        elif isinstance(expr, Paren):
            self.add_conjunct(expr.x, env, ci)
        elif isinstance(expr, (Ident, Selector, Index)):
            self.add_ref(expr, env, ci)
        elif isinstance(expr, BasicLit):
            self.add_value(lit_value(expr), expr.pos, ci, env)
        elif isinstance(expr, DataLit):
            d = expr.value
            if isinstance(d, (list, dict)):
                self.add_conjunct(data_to_ast(d, expr.pos), None, ci)
            else:
                self.add_value(d, expr.pos, ci, env)
        elif isinstance(expr, BottomLit):
            self.add_err(error("explicit error (_|_ literal) in source", expr.pos))
        elif isinstance(expr, ValueLit):
            if isinstance(expr.value, Vertex):
                self.add_vertex(expr.value, ci, expr.is_def, expr.pos, env)
            else:
                self.add_value(expr.value, expr.pos, ci, env)
        else:
            val = self.ev.eval_expr(expr, env)
            if isinstance(val, Bottom) and val.code in (INCOMPLETE, CYCLE):
                self.exprs.append((expr, env, ci, val))
            else:
                self.add_value(val, expr.pos, ci, env)

    def add_ref(self, expr: Node, env: Env | None, ci: CloseNode | None) -> None:
        r = self.ev.resolve(expr, env)
        assert r is not None
        tag = r[0]
        if tag == R_VERTEX:
            self.add_vertex(r[1], ci, r[2], expr.pos, env)
        elif tag == R_VALUE:
            self.add_value(r[1], expr.pos, ci, env)
        elif tag == R_DEFER:
            self.exprs.append((expr, env, ci, r[1]))
        else:
            self.add_err(r[1])

    def add_vertex(
        self, w: Vertex, ci: CloseNode | None, is_def: bool, pos: Pos, env: Env | None
    ) -> None:
        v = self.v
        if w is v or w is v.orig:
            return  # a reference cycle: unifying a value with itself adds nothing
        deref = env.deref if env is not None else None
        cyclic = env is not None and env.cyclic
        if deref is not None and deref.contains(w):
            # Following w again from a value obtained by following w: a cycle. The
            # first time its conjuncts are added marked cyclic; a value made only of
            # cyclic conjuncts is a structural cycle.
            self.has_cycle = True
            if cyclic:
                return
            cyclic = True
        p = v.parent
        while p is not None:
            if p is w or p.orig is w:
                self.add_err(
                    Bottom(
                        STRUCTURAL, f"structural cycle: {w.path() or 'value'} refers to itself", pos
                    )
                )
                return
            p = p.parent
        key = (id(w), id(ci) if not is_def else -id(ci) - 1)
        if key in self.seen:
            return
        self.seen.add(key)
        nci = CloseNode("def", ci) if is_def else ci
        # A vertex that is only an alias (references) adds no structure: leave it out of
        # the chain, which keeps long alias chains linear.
        conjs = w.conjuncts
        if all(type(c[0]) in _REF_TYPES for c in conjs):
            nderef = deref
        else:
            nderef = Deref(w, deref)
        for c in list(w.conjuncts):
            cenv = c[1]
            if cenv is None:
                denv = Env(None, None)
                denv.deref = nderef
                denv.cyclic = cyclic
            else:
                denv = cenv.derived(nderef, cyclic)
            self.add_conjunct(c[0], denv, nci)

    def add_value(self, val: object, pos: Pos, ci: CloseNode | None, env: Env | None) -> None:
        if env is not None and env.cyclic:
            self.has_cycle = True
        else:
            self.has_noncycle = True
        if val is TOP:
            self.has_top = True
            return
        if isinstance(val, Bottom):
            self.add_err(val if val.pos is not None else Bottom(val.code, val.msg, pos))
            return
        if isinstance(val, BasicType):
            self.update_kind(val.kind, val, pos)
            return
        if isinstance(val, Bound):
            self.update_kind(val.kind, val, pos)
            self.bounds.append(val)
            return
        if isinstance(val, tuple):
            # Derived types such as uint8: a conjunction of a type and bounds.
            for x in val:
                self.add_value(x, pos, ci, env)
            return
        if isinstance(val, Vertex):
            self.add_vertex(val, ci, False, pos, env)
            return
        if isinstance(val, DataVal):
            self.add_conjunct(data_to_ast(val.data, pos), None, ci)
            return
        if not is_atom(val):
            if isinstance(val, (Package, self.ev.builtins.Builtin)):
                self.add_err(error(f"cannot use {val!r} (a function or package) as a value", pos))
                return
            raise unsupported(pos, f"{val!r} used as a value")
        k = kind_of(val)
        if not self.update_kind(k, val, pos):
            return
        if self.scalar is None:
            self.scalar = val
            self.scalar_pos = pos
        elif not atoms_equal(self.scalar, val):
            self.add_err(
                error(f"conflicting values {value_str(val)} and {value_str(self.scalar)}", pos)
            )

    def update_kind(self, k: int, what: object, pos: Pos) -> bool:
        """Narrow the kinds the value may have; ``what`` (a value, or its text) is
        named in the error if nothing is left."""
        new = self.kind & k
        if new == 0 and self.kind != 0:
            prev = _what_str(self.kind_src) if self.kind_src is not None else kind_name(self.kind)
            what = _what_str(what)
            self.add_err(
                error(
                    f"conflicting values {what} and {prev} "
                    f"(mismatched types {kind_name(k)} and {kind_name(self.kind)})",
                    pos,
                )
            )
            self.kind = 0
            return False
        if new != self.kind or self.kind_src is None:
            self.kind_src = what
        self.kind = new
        return new != 0

    # --------------------------------------------------------------- structs
    def add_struct(self, lit: StructLit, env: Env | None, ci: CloseNode | None) -> None:
        v = self.v
        child = Env(env, v)
        if child.cyclic:
            self.has_cycle = True
        else:
            self.has_noncycle = True
        has_comp = lit.has_embed or any(isinstance(d, Comprehension) for d in lit.decls)
        group = CloseNode("group", ci) if has_comp else ci
        record = Record(group, set(lit.feature_labels), lit.has_ellipsis, lit.label_pos)
        self.records.append(record)
        if lit.feature_labels:
            self.structs.append(lit.feature_labels)
        if lit.marks_struct and not self.is_struct:
            self.is_struct = True
            self.struct_pos = lit.pos
        for d in lit.decls:
            if isinstance(d, Field):
                if d.label.kind == "dynamic":
                    self.dynamic.append((d, child, group, record))
            elif isinstance(d, Comprehension):
                # Each embedding (comprehensions count as such) has its own node.
                if isinstance(d.clauses[0], IfClause):
                    self.ifs.append((d, child, CloseNode("embed", group)))
                else:
                    self.fors.append((d, child, CloseNode("embed", group)))
            elif isinstance(d, Embed):
                self.add_conjunct(d.expr, child, CloseNode("embed", group))
        for d in lit.decls:
            if isinstance(d, Field) and d.label.kind != "dynamic":
                self.insert_field(d.label.key, (d.value, child, group, d.optional))

    def insert_field(self, label: object, conj: Conjunct) -> None:
        v = self.v
        arc = v.arcs.get(label)
        opt = conj[3]
        if arc is None:
            arc = Vertex(v, label)
            arc.optional = opt
            v.arcs[label] = arc
        else:
            if arc.status != UNEVALUATED:
                if arc.status >= FINALIZING:
                    raise CueError(
                        f"{conj[0].pos}: unsupported evaluation order: field {arc.path()} is "
                        "extended by a comprehension after its value was used"
                    )
                arc.status = UNEVALUATED
                arc.reset()
            if arc.optional and not opt:
                arc.optional = False
                del v.arcs[label]
                v.arcs[label] = arc
        arc.conjuncts.append(conj)

    # ------------------------------------------------------------ expansion
    def expand(self) -> None:
        while True:
            if self.dynamic and self.inject_dynamic():
                continue
            if self.ifs and self.inject_comprehensions(self.ifs):
                continue
            if self.fors and self.inject_comprehensions(self.fors):
                continue
            if self.exprs and self.retry_exprs():
                continue
            return

    def inject_dynamic(self) -> bool:
        todo = self.dynamic
        self.dynamic = []
        progress = False
        for item in todo:
            field, env, ci, record = item
            assert field.label.expr is not None
            lab = self.ev.eval_expr(field.label.expr, env)
            if isinstance(lab, Bottom):
                if lab.code in (INCOMPLETE, CYCLE):
                    self.dynamic.append(item)
                else:
                    self.add_err(lab)
                    progress = True
                continue
            progress = True
            if not isinstance(lab, str):
                if lab is TOP or isinstance(lab, (BasicType, Bound)):
                    self.dynamic.append(item)
                    progress = False
                    continue
                self.add_err(
                    error(f"invalid label type {type_name(lab)} (must be string)", field.label.pos)
                )
                continue
            record.labels.add(lab)
            if record.pos is not None and lab not in record.pos:
                record.pos = {**record.pos, lab: field.label.pos}
            self.insert_field(lab, (field.value, env, ci, field.optional))
        return progress

    def inject_comprehensions(self, items: list) -> bool:
        todo = list(items)
        items.clear()
        progress = False
        for item in todo:
            comp, env, ci = item
            envs: list[Env] = []
            err = self.yield_clauses(comp.clauses, 0, env, envs)
            if err is not None:
                if err.code in (INCOMPLETE, CYCLE):
                    items.append(item)
                else:
                    self.add_err(err)
                    progress = True
                continue
            progress = True
            for e in envs:
                self.add_struct(comp.body, e, ci)
        return progress

    def yield_clauses(self, clauses: list[Node], i: int, env: Env, out: list[Env]) -> Bottom | None:
        if i == len(clauses):
            out.append(env)
            return None
        c = clauses[i]
        ev = self.ev
        if type(c) is ForClause:
            src = ev.eval_expr(c.source, env)
            pairs = ev.iterate(src, c.source.pos)
            if isinstance(pairs, Bottom):
                return ev.at(pairs, c.source.pos)
            for k, val in pairs:
                vals: dict[str, Any] = {c.value: val}
                if c.key is not None:
                    vals[c.key] = k
                err = self.yield_clauses(clauses, i + 1, Env(env, None, vals), out)
                if err is not None:
                    return err
            return None
        if type(c) is IfClause:
            cond = ev.concrete(ev.eval_expr(c.cond, env), "if clause", c.cond.pos)
            if isinstance(cond, Bottom):
                return ev.at(cond, c.cond.pos)
            if not isinstance(cond, bool):
                return error(f"invalid if condition {short_val(cond)} (must be bool)", c.cond.pos)
            if not cond:
                return None
            return self.yield_clauses(clauses, i + 1, env, out)
        assert isinstance(c, LetClause)
        lv = Vertex(env.vertex, "\x00let " + c.name)
        lv.conjuncts.append((c.expr, env, None, False))
        return self.yield_clauses(clauses, i + 1, Env(env, None, {c.name: lv}), out)

    def retry_exprs(self) -> bool:
        todo = self.exprs
        self.exprs = []
        for expr, env, ci, _err in todo:
            self.add_conjunct(expr, env, ci)
        return len(self.exprs) < len(todo)

    def add_lists(self) -> None:
        lists = self.lists
        self.lists = []
        v = self.v
        closed_len = self.list_closed
        max_len = self.list_max
        opens = self.list_opens
        for lit, env, ci in lists:
            assert isinstance(lit, ListLit)
            index = 0
            for elem in lit.elems:
                if type(elem) is Comprehension:
                    envs: list[Env] = []
                    assert isinstance(elem, Comprehension) and env is not None
                    err = self.yield_clauses(elem.clauses, 0, env, envs)
                    if err is not None:
                        self.add_err(err)
                        continue
                    for e in envs:
                        self.insert_field(index, (elem.body, e, ci, False))
                        index += 1
                else:
                    self.insert_field(index, (elem, env, ci, False))
                    index += 1
            if lit.ellipsis is None:
                if closed_len is None:
                    closed_len = index
                elif closed_len != index:
                    a, b = sorted((closed_len, index))
                    self.add_err(error(f"incompatible list lengths ({a} and {b})", lit.pos))
            else:
                if lit.ellipsis.expr is not None:
                    opens.append([index, lit.ellipsis.expr, env, ci])
                max_len = max(max_len, index)
        if closed_len is not None:
            if max_len > closed_len:
                self.add_err(
                    error(
                        f"incompatible list lengths ({closed_len} and {max_len})", lists[0][0].pos
                    )
                )
            length = closed_len
            v.list_open = False
        else:
            length = max_len
            v.list_open = True
        self.list_closed = closed_len
        self.list_max = max_len
        for o in opens:
            # Elements beyond a list's own ones get its `...T` type. Like cue, do not
            # carry the references followed to reach the list into the element type:
            # recursive types such as `children: [...#Node]` end with the data.
            start, expr, env, ci = o
            if start < length and env is not None and env.deref is not None:
                env = o[2] = env.derived(None, False)
            for i in range(start, length):
                self.insert_field(i, (expr, env, ci, False))
            o[0] = max(start, length)
        if not v.is_list:
            v.is_list = True
            self.update_kind(LIST, "[...]", lists[0][0].pos)

    # --------------------------------------------------------------- result
    def finish(self) -> None:
        v = self.v
        ev = self.ev
        if self.is_struct:
            self.update_kind(STRUCT, "{...}", self.struct_pos or v.first_pos() or _NOPOS)
        for expr, _env, _ci, err in self.exprs:
            self.add_err(ev.at(err, expr.pos))
        for field, _env, _ci, _rec in self.dynamic:
            self.add_err(incomplete("label of dynamic field is incomplete", field.pos))
        for comp, env, _ci in self.ifs + self.fors:
            envs: list[Env] = []
            cerr = self.yield_clauses(comp.clauses, 0, env, envs)
            self.add_err(
                cerr if cerr is not None else incomplete("incomplete comprehension", comp.pos)
            )
        v.kind = self.kind
        v.scalar = self.scalar
        v.bounds = self.bounds
        v.has_top = self.has_top
        v.structs = self.structs
        if v.is_list and self.is_struct:
            pass  # reported by update_kind
        v.is_struct = self.is_struct and not v.is_list and self.scalar is None
        if v.is_list:
            for k in v.arcs:
                if label_is_regular(k) and not isinstance(k, int):
                    self.add_err(error("list may not have regular fields", v.first_pos()))
                    break
        elif self.scalar is not None:
            for k, arc in v.arcs.items():
                if label_is_regular(k) and not arc.optional:
                    self.add_err(
                        error(
                            f"conflicting values {value_str(self.scalar)} and struct "
                            f"(mismatched types {kind_name(kind_of(self.scalar))} and struct)",
                            self.scalar_pos,
                        )
                    )
                    break
        if self.scalar is not None and self.bounds:
            for b in self.bounds:
                bad = check_bound(b, self.scalar, self.scalar_pos)
                if bad:
                    self.add_err(
                        error(
                            f"invalid value {value_str(self.scalar)} (out of bound {b!r})",
                            self.scalar_pos,
                        )
                    )
                    break
        if self.has_cycle and not self.has_noncycle:
            self.add_err(Bottom(STRUCTURAL, "structural cycle", v.first_pos()))
            v.arcs = {}
        has_defs = False
        if self.records:
            has_defs = self.check_closed()
        # A missing field of a closed struct is an error, of an open one incomplete.
        v.closed = (
            v.is_struct and not any(r.open for r in self.records) and (has_defs or in_definition(v))
        )
        if self.errs:
            perm = [e for e in self.errs if e.fatal] or [e for e in self.errs if e.code == CYCLE]
            v.err = perm[0] if perm else self.errs[0]

    def check_closed(self) -> bool:
        """Report fields not allowed by the definitions that close this value; return
        whether any definition does."""
        defs: list[CloseNode] = []
        seen: set[int] = set()
        for r in self.records:
            n = r.ci
            while n is not None:
                if n.kind == "def" and id(n) not in seen:
                    seen.add(id(n))
                    defs.append(n)
                n = n.parent
        if not defs:
            return False
        if not self.v.arcs:
            return True
        chains = [_chain(r.ci) for r in self.records]
        for d in defs:
            # A definition allows the fields it declares. Embedded in a struct literal,
            # it closes that literal's value, which may also have the literal's own
            # fields and those of its other embeddings (and so on, if that literal is
            # embedded further out); the other conjuncts of the same embedded
            # expression are checked against it as usual.
            levels: list[tuple[int, int]] = []
            p = d.parent
            while p is not None and p.kind == "embed" and p.parent is not None:
                levels.append((id(p), id(p.parent)))
                p = p.parent.parent
            allowed: set[object] = set()
            is_open = False
            did = id(d)
            for r, chain in zip(self.records, chains, strict=True):
                if did in chain or any(g in chain and e not in chain for e, g in levels):
                    allowed |= r.labels
                    is_open = is_open or r.open
            if is_open:
                continue
            for k, arc in self.v.arcs.items():
                if isinstance(k, int) or not label_is_regular(k) or arc.optional:
                    continue  # an optional field a definition does not declare is no error
                if k not in allowed:
                    pos = None
                    for r in self.records:
                        if r.pos is not None and k in r.pos:
                            pos = r.pos[k]
                            break
                    self.add_err(error(f"field {label_str(k)} not allowed", pos or arc.first_pos()))
                    return True
        return True


def _chain(ci: CloseNode | None) -> set[int]:
    out: set[int] = set()
    while ci is not None:
        out.add(id(ci))
        ci = ci.parent
    return out


def in_definition(v: Vertex) -> bool:
    p: Vertex | None = v
    while p is not None:
        if label_is_definition(p.label):
            return True
        p = p.parent
    return False


def _what_str(what: object) -> str:
    return what if isinstance(what, str) else value_str(what)


def check_bound(b: Bound, val: object, pos: Pos | None) -> bool:
    """True if ``val`` violates bound ``b``."""
    op = b.op
    ref = b.value
    if op == "!=":
        if isinstance(val, Num) and isinstance(ref, Num):
            return compare_nums(val, ref) == 0
        return type(val) is type(ref) and val == ref
    if op in ("=~", "!~"):
        if not isinstance(val, str) or not isinstance(ref, str):
            return True
        try:
            m = regex(ref, pos).search(val) is not None
        except re.error:
            return True
        return not m if op == "=~" else m
    if isinstance(val, Num) and isinstance(ref, Num):
        c = compare_nums(val, ref)
    elif isinstance(val, str) and isinstance(ref, str):
        bv, br = val.encode(), ref.encode()
        c = (bv > br) - (bv < br)
    elif isinstance(val, bytes) and isinstance(ref, bytes):
        c = (val > ref) - (val < ref)
    else:
        return True
    return not _cmp(op, c)


def sort_arcs(fronts: list[list[object]]) -> dict[object, int]:
    """Topological merge of the field orders of the struct literals that make up a
    value (a variant of Kahn's algorithm, as ``cue`` does it). Returns a rank per label;
    the highest rank comes first."""
    counts: dict[object, int] = {}
    for a in fronts:
        if len(a) <= 1:
            continue
        for f in a[1:]:
            counts[f] = counts.get(f, 0) + 1
    heads = [0] * len(fronts)
    index = -1
    nfronts = len(fronts)
    while True:
        progressed = False
        for i in range(nfronts):
            a = fronts[i]
            h = heads[i]
            if h >= len(a):
                continue
            f = a[h]
            n = counts.get(f, 0)
            if n > 0:
                continue
            h += 1
            heads[i] = h
            if len(a) - h > 1 and counts.get(a[h], 0) > 0:
                counts[a[h]] -= 1
            if n == 0:
                counts[f] = index
                index -= 1
            progressed = True
            break
        if progressed:
            continue
        for i in range(nfronts):
            if heads[i] < len(fronts[i]):
                counts[fronts[i][heads[i]]] = 0
                progressed = True
                break
        if not progressed:
            return counts


def ordered_labels(v: Vertex) -> list[object]:
    sets = [list(s) for s in v.structs]
    m = sort_arcs(sets)
    extra = [k for k in v.arcs if k not in m]
    sets = [list(s) for s in v.structs]
    if extra:
        sets.append(extra)
    m = sort_arcs(sets)
    return sorted(m, key=lambda f: -m[f])


_NOPOS = Pos("<unknown>", 0, 0)


__all__ = ["Env", "Evaluator", "Vertex"]
