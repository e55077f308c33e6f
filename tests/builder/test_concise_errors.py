"""A misspelled argument of a type with a long signature: the bad name, the suggestion and the
few closest names, never the whole signature (that is ``details``, shown by ``--debug``)."""

from __future__ import annotations

import pytest

from zetta_utils import builder
from zetta_utils.builder import BuilderError


def test_a_misspelled_argument_of_a_long_signature_is_one_short_line() -> None:
    spec = {"target": {"@type": "build_subchunkable_apply_flow", "processing_crop_pad": [0, 0, 0]}}
    with pytest.raises(BuilderError) as info:
        builder.build(spec)
    assert str(info.value) == (
        "at `target.processing_crop_pad`: 'build_subchunkable_apply_flow' has no argument "
        "'processing_crop_pad'; did you mean 'processing_crop_pads'? (close: processing_crop_pads, "
        "roi_crop_pad, processing_blend_pads; `zetta show-registry build_subchunkable_apply_flow` "
        "lists all its arguments)"
    )
    assert isinstance(info.value, TypeError)
    assert info.value.details.startswith("signature: build_subchunkable_apply_flow(dst: ")
    assert len(info.value.details) > 1500  # what the message used to carry


def test_two_unknown_names_are_both_named_at_the_spec() -> None:
    with pytest.raises(BuilderError) as info:
        builder.build(
            {"@type": "BBox3D.from_coords", "start_cord": [0, 0, 0], "end_cord": [1, 1, 1]}
        )
    assert str(info.value) == (
        "at `<root>`: 'BBox3D.from_coords' has no arguments "
        "'start_cord' (did you mean 'start_coord'?) "
        "and 'end_cord' (did you mean 'end_coord'?) "
        "(`zetta show-registry BBox3D.from_coords` lists all its arguments)"
    )


def test_a_name_close_to_nothing_gets_no_suggestion() -> None:
    with pytest.raises(BuilderError) as info:
        builder.build(
            {
                "@type": "BBox3D.from_coords",
                "start_coord": [0, 0, 0],
                "end_coord": [1, 1, 1],
                "zzz": 1,
            }
        )
    assert str(info.value) == (
        "at `zzz`: 'BBox3D.from_coords' has no argument 'zzz' "
        "(`zetta show-registry BBox3D.from_coords` lists all its arguments)"
    )
