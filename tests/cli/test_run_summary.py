"""`zetta run` ends with one sentence saying what the run did (not the summary's repr)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
RES = [4, 4, 40]


def _spec(dst: Path) -> dict[str, object]:
    bbox = {
        "@type": "BBox3D.from_coords",
        "start_coord": [0, 0, 0],
        "end_coord": [128, 128, 2],
        "resolution": RES,
    }
    return {
        "@type": "mazepa.execute",
        "target": {
            "@type": "build_subchunkable_apply_flow",
            "bbox": bbox,
            "dst_resolution": RES,
            "processing_chunk_sizes": [[64, 64, 1]],
            "skip_intermediaries": True,
            "fn": {"@type": "lambda", "lambda_str": "lambda src: src + 1"},
            "op_kwargs": {"src": {"@type": "build_mem_layer", "bbox": bbox, "resolutions": [RES]}},
            "dst": {
                "@type": "build_ts_layer",
                "path": f"file://{dst}",
                "info_type": "image",
                "info_data_type": "float32",
                "info_num_channels": 1,
                "info_scales": [RES],
                "info_chunk_size": [64, 64, 1],
                "info_dataset_size": [128, 128, 2],
                "info_voxel_offset": [0, 0, 0],
                "info_encoding": "raw",
            },
        },
    }


def test_the_run_ends_with_a_sentence(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(_spec(tmp_path / "dst")))
    r = subprocess.run(
        [sys.executable, "-m", "zetta_utils.cli.main", "run", str(spec)],
        capture_output=True,
        text=True,
        env={**ENV, "HOME": str(tmp_path)},
        cwd=tmp_path,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    # 2 x 2 x 2 top-level chunks; 128 x 128 x 2 float32 voxels written
    assert re.fullmatch(
        r"Done in 0:\d\d:\d\d: 8 tasks done \(\d+\.\d/s\), none failed; "
        r"32\.8 kvoxels processed \(\d+(\.\d)? [kM]?voxels/s\), 128\.0 KiB written\.",
        last,
    ), last
    assert "ExecutionSummary(" not in r.stderr + r.stdout
