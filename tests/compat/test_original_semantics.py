"""Registrations whose arguments mean what they meant in the original."""

from __future__ import annotations

import pytest

from zetta_utils import builder


def test_bbox_from_points_encloses_points_on_the_upper_bounds() -> None:
    spec = {
        "@type": "BBox3D.from_points",
        "points": [[1, 2, 3], [4, 5, 6]],
        "resolution": [2, 2, 2],
    }
    box = builder.build(spec)
    assert box.bounds == ((2, 8.0001), (4, 10.0001), (6, 12.0001))
    assert box.unit == "nm"
    exact = builder.build({**spec, "epsilon": 0, "unit": "um"})
    assert exact.bounds == ((2, 8), (4, 10), (6, 12)) and exact.unit == "um"
    with pytest.raises(ValueError, match="points"):
        builder.build({"@type": "BBox3D.from_points", "points": []})


def test_invoke_lambda_str() -> None:
    assert (
        builder.build(
            {"@type": "invoke_lambda_str", "lambda_str": "lambda a, b: a - b", "a": 5, "b": 2}
        )
        == 3
    )
