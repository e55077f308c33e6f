"""Building a CloudVolume layer imports CloudVolume (about 0.5 s), so that a run's first read does
not pay for it; so does unpickling one (a worker's copy). Each check runs in a fresh interpreter,
where nothing has imported CloudVolume yet."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from zetta_utils.layer.volumetric.cloudvol import build_cv_layer

CHECK = """
import pickle, sys
from zetta_utils.layer.volumetric.cloudvol import build_cv_layer
assert "cloudvolume" not in sys.modules, "imported before any layer was built"
{action}
assert "cloudvolume" in sys.modules, "not imported by {what}"
"""


def run_check(action: str, what: str) -> None:
    script = CHECK.format(action=action, what=what)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_building_or_unpickling_a_cv_layer_imports_cloudvolume(tmp_path: Path) -> None:
    from cloudvolume import CloudVolume

    path = f"file://{tmp_path / 'vol'}"
    info = CloudVolume.create_new_info(
        num_channels=1,
        layer_type="image",
        data_type="uint8",
        encoding="raw",
        resolution=[4, 4, 40],
        voxel_offset=[0, 0, 0],
        chunk_size=[16, 16, 2],
        volume_size=[32, 32, 4],
    )
    CloudVolume(path, info=info).commit_info()
    run_check(f"build_cv_layer({path!r})", "build_cv_layer")
    pickled = tmp_path / "layer.pkl"
    pickled.write_bytes(pickle.dumps(build_cv_layer(path)))
    run_check(f"pickle.loads(open({str(pickled)!r}, 'rb').read())", "unpickling")
