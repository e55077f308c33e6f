"""Every ``"@type"`` of the original's (tests/compat/original_registry.py) is registered here
with at least the original's argument names, as ``zetta show-registry --signatures`` lists
them, or is refused with a message saying what replaces it."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from zetta_utils import builder

from .original_registry import ORIGINAL_REGISTRY, Original

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}

Listed = dict[str, list[tuple[SpecifierSet, set[str], bool]]]


def parse_show_registry(text: str) -> Listed:
    """``name [versions](signature)`` lines -> name -> [(versions, parameter names, whether it
    takes **kwargs)]."""
    listed: Listed = {}
    for line in text.splitlines():
        cut = line.index("(")
        head, signature = line[:cut], line[cut:]
        name, _, versions = head.partition(" [")
        tree = ast.parse(
            f"def f{signature.split(' -> ')[0] if ') -> ' in signature else signature}: pass"
        )
        fn = tree.body[0]
        assert isinstance(fn, ast.FunctionDef)
        args = fn.args
        names = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
        listed.setdefault(name, []).append(
            (SpecifierSet(versions.rstrip("]")), names, args.kwarg is not None)
        )
    return listed


@pytest.fixture(scope="module")
def listed() -> Listed:
    r = subprocess.run(
        [sys.executable, "-m", "zetta_utils.cli.main", "show-registry", "--signatures"],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert r.returncode == 0, r.stderr
    return parse_show_registry(r.stdout)


def _entry_id(entry: Original) -> str:
    name = entry.name if entry.version == "0.4" else f"{entry.name}@{entry.version}"
    return f"{name}[{entry.label}]" if entry.label else name


def _params(entries: list[Original]) -> list[object]:
    return [
        pytest.param(
            e,
            id=_entry_id(e),
            marks=[pytest.mark.xfail(reason=f"pending: {e.pending}", strict=False)]
            if e.pending
            else [],
        )
        for e in entries
    ]


def test_the_parser_reads_show_registry_lines() -> None:
    listed = parse_show_registry(
        "a [>=0.4](x: 'int', *, y: 'str' = 'q') -> 'None'\n"
        "a [<0.4](z, **kwargs)\n"
        "b(data: 'torch.Tensor', crop_pad: 'Sequence[int]' = Vec3D(0, 0, 0))\n"
    )
    assert listed["a"][0] == (SpecifierSet(">=0.4"), {"x", "y"}, False)
    assert listed["a"][1] == (SpecifierSet("<0.4"), {"z"}, True)
    assert listed["b"] == [(SpecifierSet(""), {"data", "crop_pad"}, False)]


@pytest.mark.parametrize("entry", _params([e for e in ORIGINAL_REGISTRY if not e.replaced]))
def test_registered_with_the_original_arguments(entry: Original, listed: Listed) -> None:
    assert entry.name in listed, f"{entry.name!r} is not registered"
    version = Version(entry.version)
    serving = [
        (params, kw) for spec, params, kw in listed[entry.name] if not str(spec) or version in spec
    ]
    assert serving, f"no registration of {entry.name!r} serves spec version {version}"
    # a version-ranged registration wins over an unversioned one, as in get_matching_entry
    ranged = [(p, kw) for spec, p, kw in listed[entry.name] if str(spec) and version in spec]
    params, _ = (ranged or serving)[0]
    missing = [p for p in entry.params if p not in params]
    assert not missing, (
        f"{entry.name} (version {version}) lacks the original's argument(s) {missing}"
    )


@pytest.mark.parametrize("entry", _params([e for e in ORIGINAL_REGISTRY if e.replaced]))
def test_replaced_names_say_what_replaces_them(entry: Original, listed: Listed) -> None:
    assert entry.name in listed, f"{entry.name!r} is not registered (it must refuse with a message)"
    assert any(entry.params[0] in params for _, params, _ in listed[entry.name])
    with pytest.raises(builder.UnsupportedTypeError, match=r"is not supported here: .{20,}"):
        builder.build({"@version": entry.version, "@type": entry.name})
