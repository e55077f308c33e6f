"""raw_chunk_array: the bytes of a raw chunk file (the chunk's XYZC array, x fastest) from data in
any layout, by the compiled tiled copy (``_chunk_copy.c``) or NumPy where it is not built: the
same bytes as NumPy's transpose, every dtype size, strides and shape."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from zetta_utils.layer.volumetric import raw_chunks


def layouts() -> list[tuple[str, Any]]:
    rng = np.random.default_rng(0)
    out: list[tuple[str, Any]] = []
    for dtype in (np.uint8, np.int16, np.float32, np.uint64, np.complex128):
        big = (rng.random((3, 300, 260, 5)) * 1000).astype(dtype)  # CXYZ, C order (torch's)
        out += [
            (f"{dtype.__name__} torch layout", big[:1, :128, :128, :1].transpose(1, 2, 3, 0)),
            (f"{dtype.__name__} channels, z", big[:, 17:150, 3:259, 1:4].transpose(1, 2, 3, 0)),
            (f"{dtype.__name__} reversed", big[:2, ::-1, 5:70, ::-2].transpose(1, 2, 3, 0)),
            (f"{dtype.__name__} x fastest", np.asfortranarray(big[0, :40, :30, :3])[..., None]),
        ]
    out.append(("one voxel", np.ones((1, 1, 1, 1), dtype=np.uint8)))
    out.append(("empty", np.ones((0, 4, 1, 1), dtype=np.uint8)))
    return out


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize(("name", "part"), layouts(), ids=[n for n, _ in layouts()])
def test_raw_chunk_array_bytes(
    monkeypatch: pytest.MonkeyPatch, compiled: bool, name: str, part: Any
) -> None:
    if compiled:
        if raw_chunks._CHUNK_COPY is None:
            pytest.skip("the compiled copy is not built")
    else:
        monkeypatch.setattr(raw_chunks, "_CHUNK_COPY", None)
    got = raw_chunks.raw_chunk_array(part)
    assert got.flags.c_contiguous and got.dtype == part.dtype and got.shape == part.T.shape
    assert got.tobytes() == part.tobytes(order="F"), name


def test_x_fastest_data_is_not_copied() -> None:
    part = np.asfortranarray(np.arange(24, dtype=np.uint16).reshape(2, 3, 4, 1))
    got = raw_chunks.raw_chunk_array(part)
    assert np.shares_memory(got, part) and got.tobytes() == part.tobytes(order="F")


def test_a_torch_tensors_chunk() -> None:
    # what a write of an operation's output hands over: a chunk of a CXYZ tensor, as XYZC
    data = torch.arange(2 * 64 * 48 * 3, dtype=torch.int32).reshape(2, 64, 48, 3)
    part = data.numpy().transpose(1, 2, 3, 0)[16:48, 8:40]
    assert raw_chunks.raw_chunk_array(part).tobytes() == part.tobytes(order="F")


def test_the_compiled_copy_refuses_mismatched_buffers() -> None:
    copy = raw_chunks._CHUNK_COPY
    if copy is None:
        pytest.skip("the compiled copy is not built")
    with pytest.raises(ValueError, match="shapes differ along dimension 1"):
        copy.copy(np.empty((2, 3), np.uint8), np.empty((2, 4), np.uint8))
    with pytest.raises(ValueError, match="item size"):
        copy.copy(np.empty((2, 3), np.uint8), np.empty((2, 3), np.uint16))
    with pytest.raises(ValueError, match="at most 4 dimensions"):
        copy.copy(np.empty((1,) * 5, np.uint8), np.empty((1,) * 5, np.uint8))
