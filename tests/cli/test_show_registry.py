"""``zetta show-registry``: descriptions and argument names, one type in full, and a clear
answer when nothing matches."""

from __future__ import annotations

from typing import Any

import attrs
from click.testing import CliRunner

from zetta_utils.cli import registry_help
from zetta_utils.cli.main import cli


def _show(*args: str) -> Any:
    return CliRunner().invoke(cli, ["show-registry", *args])


def test_the_listing_gives_each_type_a_description_and_its_argument_names() -> None:
    r = _show()
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("build_cv_layer "))
    assert "A `VolumetricLayer` over the precomputed volume at `path`" in lines[head]
    assert lines[head + 1].startswith("    path, default_desired_resolution, ")
    assert "cv_kwargs" in " ".join(lines[head + 1 : head + 4])
    assert "(" not in lines[head + 1]  # names, not the signature
    assert lines[-1].endswith("`zetta show-registry NAME` shows one in full.")


def test_a_pattern_lists_the_types_containing_it() -> None:
    r = _show("bbox3d")
    assert r.exit_code == 0, r.output
    names = [line.split()[0] for line in r.output.splitlines() if line and not line.startswith(" ")]
    assert names[0] == "BBox3D"  # an exact name (any case) is shown in full ...
    assert "Arguments:" in r.output
    assert (
        "Also matching 'bbox3d': BBox3D.from_coords, BBox3D.from_points, BBox3D.from_slices"
        in r.output
    )
    r = _show("from_")
    names = [line.split()[0] for line in r.output.splitlines() if line and not line.startswith(" ")]
    assert {"BBox3D.from_coords", "VolumetricIndex.from_coords"} <= set(names)
    assert all("from_" in n for n in names)


def test_a_name_shows_the_full_signature_with_each_arguments_default_and_doc() -> None:
    r = _show("build_cv_layer")
    assert r.exit_code == 0, r.output
    text = r.output
    assert text.startswith("build_cv_layer\n  A `VolumetricLayer` over the precomputed volume")
    assert "  build_cv_layer(path: 'str', default_desired_resolution: " in text
    lines = text.splitlines()
    path = lines.index("    path: str  (required)")
    assert lines[path + 1].startswith("        `file://` (`~` expanded), a local path")
    cv = next(i for i, line in enumerate(lines) if line.startswith("    cv_kwargs: "))
    assert lines[cv].endswith(" = None")
    assert "keyword arguments for the `CloudVolume` constructor" in lines[cv + 1]


def test_nothing_matching_is_said_with_the_closest_names() -> None:
    r = _show("buld_cv_layer")
    assert r.exit_code == 1
    assert "no registered type matches 'buld_cv_layer'; did you mean build_cv_layer" in r.output
    r = _show("qqqqqq")
    assert r.exit_code == 1
    assert "no registered type matches 'qqqqqq' (`zetta show-registry` lists them all)" in r.output


def test_signatures_for_scripts() -> None:
    r = _show("--signatures", "BBox3D.from_coords")
    assert r.exit_code == 0, r.output
    assert r.output.startswith("BBox3D.from_coords(start_coord")
    assert len(r.output.splitlines()) == 1


# ---- the docstring styles the argument docs come from -------------------------------------------


def sphinx(a: int, b: str = "x") -> None:
    """Sphinx style.

    :param a: the first,
        on two lines.
    :param b: the second.
    """


def google(a: int, *args: int, b: str = "x", **kwargs: int) -> None:
    """Google style.

    Args:
        a (int): the first,
            on two lines.
        *args: more.
        b: the second.
        **kwargs: the rest.

    Returns:
        nothing.
    """


def numpy_style(a: int, b: str = "x") -> None:
    """NumPy style.

    Parameters
    ----------
    a : int
        the first,
        on two lines.
    b : str
        the second.

    Returns
    -------
    None
    """


@attrs.frozen
class Fields:
    """A class whose fields say what they are."""

    a: int
    """the first."""
    b: str = "x"
    """the second,
    on two lines."""


def test_argument_docs_from_every_docstring_style() -> None:
    assert registry_help.argument_docs(sphinx) == {
        "a": "the first, on two lines.",
        "b": "the second.",
    }
    assert registry_help.argument_docs(google) == {
        "a": "the first, on two lines.",
        "args": "more.",
        "b": "the second.",
        "kwargs": "the rest.",
    }
    assert registry_help.argument_docs(numpy_style) == {
        "a": "the first, on two lines.",
        "b": "the second.",
    }
    assert registry_help.argument_docs(Fields) == {
        "a": "the first.",
        "b": "the second, on two lines.",
    }


def test_the_description_is_the_first_sentence_on_one_line() -> None:
    def long_first_paragraph() -> None:
        """Copy ``src`` to
        ``dst``, chunk by chunk. Then some more.

        Details.
        """

    assert registry_help.one_line(long_first_paragraph) == "Copy `src` to `dst`, chunk by chunk."
    assert registry_help.one_line(lambda: None) == "(no description)"
