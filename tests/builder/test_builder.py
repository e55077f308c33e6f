import pickle
from collections.abc import Sequence
from typing import Any

import pytest

from zetta_utils import builder
from zetta_utils.builder import BuilderError, BuilderPartial
from zetta_utils.geometry import BBox3D, Vec3D


@builder.register("tests.Pair")
class Pair:
    def __init__(self, a: Any, b: int = 0) -> None:
        self.a = a
        self.b = b


@builder.register("tests.add")
def add(x: int, y: int = 1) -> int:
    return x + y


@builder.register("tests.takes_vec")
def takes_vec(
    v: Vec3D[int], vs: Sequence[Vec3D[int]] = (), maybe: Vec3D[float] | None = None
) -> Any:
    return v, list(vs), maybe


@builder.register("tests.fails")
def fails(x: int) -> None:
    raise ValueError(f"x={x} is not acceptable")


@builder.register("tests.old", versions="<0.4")
def old_impl() -> str:
    return "old"


@builder.register("tests.old", versions=">=0.4")
def new_impl() -> str:
    return "new"


def test_guide_threshold_processor_example() -> None:
    @builder.register("ThresholdProcessorTest")
    class ThresholdProcessor:
        def __init__(self, threshold: float = -1) -> None:
            self.threshold = threshold

    obj = builder.build({"@type": "ThresholdProcessorTest", "threshold": 10})
    assert type(obj).__name__ == "ThresholdProcessor"
    assert obj.threshold == 10


def test_recursive_build_through_dicts_and_lists() -> None:
    spec = {
        "@type": "tests.Pair",
        "a": [{"@type": "tests.add", "x": 1}, {"plain": {"@type": "tests.add", "x": 2, "y": 3}}],
        "b": 7,
    }
    obj = builder.build(spec)
    assert obj.a == [2, {"plain": 5}]
    assert obj.b == 7
    assert builder.build([{"@type": "tests.add", "x": 0}]) == [1]


def test_method_registration_and_vec_coercion() -> None:
    bbox = builder.build(
        {
            "@type": "BBox3D.from_coords",
            "start_coord": [0, 0, 0],
            "end_coord": [5, 7, 11],
            "resolution": [4, 4, 30],
        }
    )
    assert bbox == BBox3D.from_coords((0, 0, 0), (5, 7, 11), (4, 4, 30))
    v, vs, maybe = builder.build(
        {
            "@type": "tests.takes_vec",
            "v": [1, 2, 3],
            "vs": [[1, 1, 1], [2, 2, 2]],
            "maybe": [0.5, 1, 1],
        }
    )
    assert isinstance(v, Vec3D) and v == Vec3D(1, 2, 3)
    assert all(isinstance(e, Vec3D) for e in vs)
    assert isinstance(maybe, Vec3D)


def test_partial_mode_builds_nested_once_and_merges_call_args() -> None:
    calls: list[int] = []

    @builder.register("tests.count_build")
    def count_build(n: int) -> int:
        calls.append(n)
        return n

    p = builder.build(
        {"@type": "tests.add", "@mode": "partial", "x": {"@type": "tests.count_build", "n": 5}}
    )
    assert isinstance(p, BuilderPartial)
    assert calls == []
    assert p() == 6
    assert p(y=10) == 15
    assert calls == [5]
    q = pickle.loads(pickle.dumps(p))
    assert q(y=2) == 7


def test_lambda() -> None:
    f = builder.build({"@type": "lambda", "lambda_str": "lambda src: src * 2"})
    assert f(3) == 6
    g = builder.build({"@type": "lambda", "lambda_str": "lambda a: np.asarray(a).sum()"})
    assert g([1, 2, 3]) == 6
    with pytest.raises(BuilderError, match="must start with 'lambda'"):
        builder.build({"@type": "lambda", "lambda_str": "import os"})
    with pytest.raises(BuilderError, match="not a valid lambda"):
        builder.build({"@type": "lambda", "lambda_str": "lambda x: )"})


def test_version_selection() -> None:
    assert builder.build({"@type": "tests.old"}) == "new"
    assert builder.build({"@version": "0.3", "@type": "tests.old"}) == "old"
    # @version applies to nested specs and is not passed on as an argument
    out = builder.build({"@version": "0.3", "@type": "tests.Pair", "a": {"@type": "tests.old"}})
    assert out.a == "old"
    assert builder.build({"@version": "0.4", "k": {"@type": "tests.old"}}) == {"k": "new"}


def test_unknown_type_lists_close_matches() -> None:
    with pytest.raises(BuilderError) as e:
        builder.build({"@type": "tests.Pair", "a": {"@type": "BBox3D.from_cords"}})
    assert e.value.spec_path == "a"
    assert "closest registered names: BBox3D.from_coords" in str(e.value)


def test_bad_argument_names_parameter_and_signature() -> None:
    with pytest.raises(BuilderError) as e:
        builder.build({"outer": [{"@type": "tests.add", "x": 1, "yy": 2}]})
    assert str(e.value) == (
        "at `outer[0].yy`: 'tests.add' has no argument 'yy'; did you mean 'y'? "
        "(`zetta show-registry tests.add` lists all its arguments)"
    )
    assert e.value.details == "signature: tests.add(x: int, y: int = 1) -> int"
    with pytest.raises(BuilderError) as e:
        builder.build({"@type": "tests.add"})
    assert str(e.value) == (
        "at `<root>`: 'tests.add' needs 'x', which the spec does not give "
        "(`zetta show-registry tests.add` lists all its arguments)"
    )


def test_runtime_error_names_path() -> None:
    with pytest.raises(BuilderError) as e:
        builder.build({"@type": "tests.Pair", "a": {"@type": "tests.fails", "x": 3}})
    assert e.value.spec_path == "a"
    assert "x=3 is not acceptable" in str(e.value)
    assert isinstance(e.value.__cause__, ValueError)


def test_invalid_specs_are_reported() -> None:
    with pytest.raises(BuilderError, match="expected a spec"):
        builder.build(spec=5)
    with pytest.raises(BuilderError, match="must be a string"):
        builder.build({"@type": 3})
    with pytest.raises(BuilderError, match="'@mode' must be one of"):
        builder.build({"@type": "tests.add", "@mode": "lazy", "x": 1})
    with pytest.raises(BuilderError, match="unknown special key '@tpye'"):
        builder.build({"@tpye": "tests.add"})
    with pytest.raises(BuilderError) as typed:
        builder.build({"a": {"@type": "tests.add", "@mdoe": "partial", "x": 1}})
    assert str(typed.value) == (
        "at `a`: unknown special key '@mdoe' (known: @type, @mode, @version)"
    )
    cyclic: dict[str, Any] = {"@type": "tests.Pair"}
    cyclic["a"] = cyclic
    with pytest.raises(BuilderError, match="cycle"):
        builder.build(cyclic)
    with pytest.raises(ValueError, match="exactly one"):
        builder.build()


def test_registration_conflicts() -> None:
    def other() -> None: ...

    with pytest.raises(RuntimeError, match="already registered"):
        builder.register("tests.add")(other)
    # re-registering the same callable is fine
    builder.register("tests.add")(add)


def test_build_from_file(tmp_path: Any) -> None:
    (tmp_path / "s.json").write_text('{"@type": "tests.add", "x": 41}')
    assert builder.build(path=str(tmp_path / "s.json")) == 42
    (tmp_path / "s.yaml").write_text("'@type': tests.add\nx: 1\ny: 1\n")
    assert builder.build(path=str(tmp_path / "s.yaml")) == 2
