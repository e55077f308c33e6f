"""Conformance of the built-in CUE evaluator with the real CUE (v0.4.0-beta.1).

Every file of the corpus (the quick start guide's examples, the real-world run specs and
our own feature/tricky/error cases) is evaluated by the built-in evaluator and compared
with the JSON the real CUE exports for it: live (the WebAssembly CUE under Node, all files
in one process) when Node and npm are available, and always against the recorded
``NAME.expected.json``. Numbers compare by value and kind (``2.0`` is not ``2``), objects
by key order too.
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from cue_real import CASE_DIRS, HERE, RealCue, all_cases

from zetta_utils.parsing import cue
from zetta_utils.parsing.cue import CueError, load

CASES = all_cases()


def case_id(p: Path) -> str:
    return f"{p.parent.name}/{p.stem}"


def strict_diff(a: Any, b: Any, path: str = "$") -> str | None:
    """Where ``a`` and ``b`` differ as JSON values, with int/float/bool kinds and key order
    significant; None if they are the same."""
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} {a!r} != {type(b).__name__} {b!r}"
    if isinstance(a, dict):
        if list(a) != list(b):
            return f"{path}: keys {list(a)} != {list(b)}"
        for k in a:
            d = strict_diff(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = strict_diff(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    if a != b:
        return f"{path}: {a!r} != {b!r}"
    return None


def builtin_result(path: Path) -> dict[str, Any]:
    try:
        return {"ok": True, "value": load(path, engine="builtin")}
    except CueError as e:
        return {"ok": False, "error": str(e)}


def expected_of(path: Path) -> dict[str, Any]:
    return json.loads(path.with_name(path.stem + ".expected.json").read_text(encoding="utf-8"))


def assert_same(ours: dict[str, Any], real: dict[str, Any], what: str) -> None:
    if real["ok"]:
        assert ours["ok"], (
            f"{what} exports fine, the built-in evaluator fails:\n{ours.get('error')}"
        )
        diff = strict_diff(real["value"], ours["value"])
        assert diff is None, f"differs from {what}: {diff}"
    else:
        assert not ours["ok"], (
            f"{what} rejects the file ({real['error'].strip()}), the built-in evaluator accepts it"
        )
        assert re.search(r"\.cue:\d+:\d+", ours["error"]), (
            f"error without file:line:column: {ours['error']}"
        )


# ------------------------------------------------------------------ conformance
def test_corpus_is_complete() -> None:
    names = [p.name for p in CASES]
    guide = [n for n in names if n.startswith("guide_")]
    corpus = list((HERE / "cue_corpus").glob("*.cue"))
    own = [p for p in (HERE / "cue_cases").glob("*.cue") if not p.name.startswith("guide_")]
    assert len(guide) >= 10
    assert len(corpus) == 10
    assert len(own) >= 40
    for p in CASES:
        assert p.with_name(p.stem + ".expected.json").is_file(), f"no recorded output for {p}"


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_matches_recorded_real_cue(path: Path) -> None:
    assert_same(builtin_result(path), expected_of(path), "the recorded real CUE output")


@pytest.mark.parametrize("path", CASES, ids=case_id)
def test_matches_live_real_cue(path: Path, real_cue: RealCue) -> None:
    r = real_cue.result(path)
    if r["code"] == 0:
        real: dict[str, Any] = {"ok": True, "value": json.loads(r["stdout"])}
    else:
        real = {"ok": False, "error": r["stderr"]}
    assert_same(builtin_result(path), real, "the real CUE")
    recorded = expected_of(path)
    assert recorded["ok"] == real["ok"], f"recording of {path.name} is stale"
    if real["ok"]:
        assert strict_diff(real["value"], recorded["value"]) is None, (
            f"recording of {path.name} is stale"
        )


@pytest.mark.parametrize("path", [p for p in CASES if p.name.startswith("err_")], ids=case_id)
def test_error_positions_agree_with_real_cue(path: Path) -> None:
    """Our error names a position the real CUE names too (when it names one)."""
    ours = builtin_result(path)
    assert not ours["ok"]
    assert f"{path}:" in ours["error"]
    real_positions = re.findall(r"\.cue:(\d+:\d+)", expected_of(path)["error"])
    our_first = re.search(r"\.cue:(\d+:\d+)", ours["error"])
    assert our_first is not None
    if real_positions:
        assert our_first.group(1) in real_positions, (ours["error"], real_positions)


# ------------------------------------------------------------- unsupported input
UNSUPPORTED = [
    ('import "encoding/yaml"\na: yaml.Unmarshal("a: &x {<<: *x}")\n', "merges a map into", 2, 4),
    ('import "encoding/yaml"\na: yaml.Marshal({"a\\nb": 1})\n', "yaml.Marshal of a key", 2, 4),
    ('import "encoding/yaml"\na: yaml.Unmarshal("# none")\n', "YAML without a document", 2, 4),
    ('import "encoding/yaml"\na: yaml.Unmarshal("[!!str, 1]")\n', "a tag followed by", 2, 4),
    ('import "encoding/yaml"\na: yaml.Unmarshal("[a?b]")\n', "a '?' in a plain scalar", 2, 4),
    ('import "encoding/yaml"\na: yaml.Unmarshal("[b:]")\n', "a ':' followed by", 2, 4),
    ('import "text/template"\na: template.Execute("{{.Abs}}", 9999999999999999999)\n', "big", 2, 4),
    ('import "tool/exec"\na: exec.Run\n', "exec.Run", 2, 9),
    ('import "net"\na: net.FQDN("xn--ab-m1t.com")\n', "FQDN of a punycode label with a", 2, 4),
    ('import "math"\na: math.Jn(2000000, 1.5)\n', "math.Jn of an order beyond", 2, 4),
    ('import "time"\na: time.Unix(1329227995784915872, 0)\n', "time.Unix of more than", 2, 4),
    ('import "example.com/pkg"\na: pkg.X\n', 'package "example.com/pkg"', 2, 8),
    ('import "path"\na: path.Base("a", path.Windows)\n', "Windows paths", 2, 4),
    ('import "list"\na: [2, 1] & list.UniqueItems()\n', "used as a validator", 2, 13),
    ('a: "x" =~ "\\\\pL"\n', "regular expression", 1, 4),
    ("a: close({b: 1})\n", "close() builtin", 1, 4),
    ("a: {\n\t[string]: int\n\tb: 1\n}\n", "pattern constraint", 2, 2),
    ('x: ["a"]\nX=y: 1\nz: X\n', "alias 'X='", 2, 1),
    ("a!: 1\n", "required field marker", 1, 1),
    ("a: [1, 2, 3][0:1]\n", "slice expression", 1, 13),
    ("a: or([1, 2])\n", "or() builtin", 1, 4),
]


@pytest.mark.parametrize(
    ("src", "construct", "line", "col"), UNSUPPORTED, ids=[u[1] for u in UNSUPPORTED]
)
def test_unsupported_constructs_are_clear_errors(
    src: str, construct: str, line: int, col: int
) -> None:
    with pytest.raises(CueError) as info:
        load(src, engine="builtin")
    msg = str(info.value)
    assert "unsupported CUE construct" in msg
    assert construct in msg
    assert msg.startswith(f"<input>:{line}:{col}:"), msg


def test_unsupported_construct_in_file_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "spec.cue"
    p.write_text('a: 1\nimport "encoding/yaml"\n', encoding="utf-8")
    with pytest.raises(CueError) as info:
        load(p, engine="builtin")
    # An import after a declaration is a syntax error in CUE as well.
    assert f"{p}:2:" in str(info.value)
    p.write_text('import "tool/exec"\n\na: exec.Run\n', encoding="utf-8")
    with pytest.raises(CueError, match=re.escape(f"{p}:3:9: unsupported CUE construct")):
        load(p, engine="builtin")


# ----------------------------------------------------------------------- values
def test_number_kinds_follow_cue() -> None:
    out = load(
        "a: 2.0\nb: 4 / 2\nc: 0.1 + 0.2\nd: 7 div 2\ne: 1e3\nf: 1e3 + 0\ng: 3 * 1.0\n",
        engine="builtin",
    )
    assert out == {"a": 2.0, "b": 2, "c": 0.3, "d": 3, "e": 1000.0, "f": 1000, "g": 3.0}
    assert [type(out[k]) for k in "abcdefg"] == [float, int, float, int, float, int, float]


def test_key_order_follows_cue() -> None:
    src = (
        "#T: {a: int, ...}\nx: #T & {b: 1, a: 2}\ny: {z: 1} & {a: 2}\n"
        "w: #U & {b: 1, a: 2}\n#U: {a: int, b: int}\n"
    )
    out = load(src, engine="builtin")
    assert list(out["x"]) == ["b", "a"]
    assert list(out["y"]) == ["z", "a"]
    assert list(out["w"]) == ["a", "b"]


def test_top_level_list_and_scalar() -> None:
    assert load("[#a, #a]\n#a: {v: 1}\n", engine="builtin") == [{"v": 1}, {"v": 1}]
    assert load('"Hello \\(#place)!"\n#place: "world"\n', engine="builtin") == "Hello world!"


@pytest.mark.parametrize(
    ("src", "message"),
    [
        ("a: 1\na: 2\n", "<input>:2:4: a: conflicting values 2 and 1"),
        ("a: int\n", "<input>:1:4: a: incomplete value int"),
        ("#A: {b: int}\nx: #A & {c: 1}\n", "<input>:2:10: x: field c not allowed"),
        ("a: *1 | *2\n", "<input>:1:4: a: incomplete value 1 | 2"),
    ],
)
def test_error_messages(src: str, message: str) -> None:
    with pytest.raises(CueError) as info:
        load(src, engine="builtin")
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


# --------------------------------------------------------------------------- api
def test_load_accepts_paths_and_text(tmp_path: Path) -> None:
    p = tmp_path / "run.cue"
    p.write_text("a: 1\n", encoding="utf-8")
    assert load(p, engine="builtin") == {"a": 1}
    assert load(str(p), engine="builtin") == {"a": 1}
    assert load("a: 1", engine="builtin") == {"a": 1}
    with pytest.raises(CueError, match="CUE file not found"):
        load(tmp_path / "missing.cue", engine="builtin")
    with pytest.raises(ValueError, match="engine must be"):
        load("a: 1", engine="wasm")


def test_auto_engine_uses_builtin_without_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZETTA_CUE_BINARY", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cue.find_cue_binary() is None
    assert load("a: 1 + 1") == {"a": 2}
    with pytest.raises(CueError, match="no cue binary found"):
        load("a: 1", engine="binary")


def test_bad_cue_binary_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ZETTA_CUE_BINARY", str(tmp_path / "nope"))
    with pytest.raises(CueError, match="ZETTA_CUE_BINARY"):
        load("a: 1")


@pytest.fixture()
def wasm_cue_binary(real_cue: RealCue, tmp_path: Path) -> Path:
    """An executable `cue` command backed by the WebAssembly CUE."""
    if real_cue.mod is None:
        pytest.skip(real_cue.skip_reason or "real CUE unavailable")
    script = tmp_path / "cue"
    script.write_text(
        f'#!/bin/sh\nexec node "{HERE / "cue_cli.js"}" "{real_cue.mod}" "$@"\n', encoding="utf-8"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_binary_engine_matches_builtin(
    wasm_cue_binary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZETTA_CUE_BINARY", str(wasm_cue_binary))
    spec = HERE / "cue_cases" / "guide_09_remote.cue"
    assert strict_diff(load(spec), load(spec, engine="builtin")) is None
    assert load('x: "\\(1 + 1)"', engine="binary") == {"x": "2"}
    with pytest.raises(CueError, match=r"conflicting values[\s\S]*:\d+:\d+"):
        load("a: 1\na: 2\n")


def test_case_dirs_hold_only_cue_and_recordings() -> None:
    for d in CASE_DIRS:
        for p in d.iterdir():
            assert (
                p.suffix == ".cue" or p.name.endswith(".expected.json") or p.name == "README.md"
            ), p


def test_evaluate_is_deterministic() -> None:
    spec = (HERE / "cue_corpus" / "dodam_hive_4_montage.cue").read_text(encoding="utf-8")
    first = json.dumps(cue.evaluate(spec))
    assert all(json.dumps(cue.evaluate(spec)) == first for _ in range(2))


# -------------------------------------------------------------- standard packages
def test_every_member_of_the_standard_packages_is_implemented_or_unsupported() -> None:
    """Each function and constant of CUE v0.4's packages either evaluates (the pure
    ones) or is reported as unsupported where used; nothing else."""
    from zetta_utils.parsing.cue._errors import Pos
    from zetta_utils.parsing.cue._packages import IMPLEMENTED, STDLIB, member

    pos = Pos("<input>", 1, 1)
    implemented = unsupported = 0
    for path, names in STDLIB.items():
        assert set(IMPLEMENTED.get(path, {})) <= set(names.split()), path
        for name in names.split():
            try:
                value = member(path, name, pos)
            except CueError as e:
                assert "unsupported CUE construct" in str(e), (path, name)
                unsupported += 1
            else:
                assert value is IMPLEMENTED[path][name]
                implemented += 1
    assert implemented >= 313 and unsupported <= 6, (implemented, unsupported)


def test_every_implemented_function_is_checked_against_real_cue() -> None:
    """Each implemented package function is called by at least one conformance case."""
    from zetta_utils.parsing.cue._builtins import Builtin
    from zetta_utils.parsing.cue._packages import IMPLEMENTED

    text = "\n".join(p.read_text(encoding="utf-8") for p in CASES)
    missing = [
        f"{path}.{name}"
        for path, members in IMPLEMENTED.items()
        for name, value in members.items()
        if isinstance(value, Builtin) and f"{path.rsplit('/', 1)[-1]}.{name}(" not in text
    ]
    assert not missing, missing


def test_unknown_package_member_is_an_error_not_unsupported() -> None:
    with pytest.raises(CueError) as info:
        load('import "strings"\na: strings.Title("x")\n', engine="builtin")
    assert "unsupported" not in str(info.value)
    assert "<input>:2:4: a: cannot call undefined field: Title" in str(info.value)


def test_time_parse_error_names_value_and_layout() -> None:
    """A value that does not fit the layout is an error with Go's wording; time.Format
    (a validator) reports the value only."""
    src = 'import "time"\na: time.Parse("2006-01-02", "2021-13-01")\n'
    with pytest.raises(CueError, match=r'parsing time "2021-13-01": month out of range'):
        cue.evaluate(src)
    src = 'import "time"\na: time.Parse("15:04", "3pm")\n'
    with pytest.raises(CueError, match=r'cannot parse "pm" as ":"'):
        cue.evaluate(src)
    with pytest.raises(CueError, match=r'time.Format: invalid time "x"'):
        cue.evaluate('import "time"\na: time.Format("x", time.Kitchen)\n')
