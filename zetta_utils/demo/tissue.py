"""Procedural stand-in for electron-microscopy images of brain tissue.

A section is rendered from a continuous function of physical position (nm) and section number,
so any region can be rendered at any resolution, chunk by chunk, and neighbouring chunks agree
exactly. The picture:

* neurites: cells of a power diagram (a Voronoi diagram with weighted points, so sizes vary) of
  one jittered point per grid square (``neurite_spacing``), with bent boundaries (the pixel
  positions are displaced by a smooth field), each with its own grey level, outlined by thin
  dark membranes;
* compartments: a coarser diagram of the same kind (``compartment_spacing``) that tints the grey
  level and draws thicker sheaths; a share of them are cell bodies (smooth cytoplasm, a nucleus
  with a dark envelope and a nucleolus) instead of neurites;
* organelles: a sparse scatter of dark discs (mitochondria-like);
* grain: per-pixel noise whose strength falls with the pixel size, as averaging would make it.

Sections change slowly with ``z``: every cell's point circles around its place, with period
``z_period`` sections, so consecutive sections look related and section ``z`` equals section
``z + z_period`` exactly (the demo volume stores each repeating section once, see
:mod:`zetta_utils.demo.volume`).

Lines and discs are drawn pre-filtered for the pixel size (their profile widened by the pixel's
footprint, with the same total darkness), so coarse renderings look like downsampled fine ones.

Random choices come from integer hashes of grid coordinates and the seed; the arithmetic is
NumPy float32/float64, and the result is rounded to ``uint8``: the same seed gives the same
bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
import numpy.typing as npt


@attrs.frozen
class TissueParams:
    """How the procedural tissue looks. Lengths in nm, intensities in uint8 grey levels."""

    seed: int = 0
    z_period: int = 10
    neurite_spacing: float = 850.0
    compartment_spacing: float = 7000.0
    organelle_spacing: float = 1100.0
    organelle_fraction: float = 0.45
    organelle_radius: tuple[float, float] = (70.0, 190.0)
    drift: float = 0.13  # how far a cell centre circles, in units of its grid spacing
    size_spread: float = 0.4  # spread of cell sizes (power-diagram weights), in grid spacings
    wobble: float = 0.5  # how far boundaries bend, in grid spacings
    neurite_grey: tuple[float, float] = (115.0, 205.0)
    compartment_tint: float = 18.0
    membrane_width: float = 9.0  # Gaussian sigma of a membrane's darkness profile
    membrane_depth: float = 90.0
    sheath_width: float = 22.0
    sheath_depth: float = 85.0
    organelle_depth: float = 60.0
    soma_fraction: float = 0.25  # share of compartments that are cell bodies
    soma_grey: float = 175.0
    nucleus_radius: float = 0.22  # in compartment spacings
    nucleus_grey: float = 135.0
    nucleolus_depth: float = 60.0
    organelle_edge: float = 12.0
    grain: float = 26.0  # amplitude of per-pixel noise at 4 nm; it falls as 1/sqrt(pixel size)


# --- hashing -------------------------------------------------------------------------------------


def _mix(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """A 64-bit finaliser (splitmix64): every input bit affects every output bit."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def hash_uniform(*keys: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Uniform numbers in [0, 1) determined by integer ``keys`` (broadcast together)."""
    h: npt.NDArray[np.uint64] = np.asarray(0x9E3779B97F4A7C15, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in keys:
            arr = np.asarray(k).astype(np.int64).view(np.uint64)
            h = _mix((h ^ arr) * np.uint64(0x2545F4914F6CDD1D) + np.uint64(0x632BE59BD9B4E019))
        h = _mix(h)
    return np.asarray((h >> np.uint64(11)).astype(np.float64) / float(1 << 53))


# --- building blocks -----------------------------------------------------------------------------


@attrs.frozen
class _Cells:
    """Voronoi cells seen by a block of pixels: per pixel, the distance to the nearest cell
    boundary and the cell's entry in a small table of grid squares (``table_x`` by ``table_y``)."""

    edge_distance: npt.NDArray[np.float32]
    center_distance: npt.NDArray[np.float32]  # nm from the pixel to its cell's point
    cell: npt.NDArray[np.intp]  # flat index into the (table_x, table_y) table
    table_x: npt.NDArray[np.int64]  # grid square numbers, as a column (N, 1)
    table_y: npt.NDArray[np.int64]  # and as a row (1, M)

    def lookup(self, table: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
        """A per-square quantity (shape (N, M)) at every pixel."""
        return np.take(table.astype(np.float32).ravel(), self.cell)


def _table(
    q: npt.NDArray[np.float32], spacing: float
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
    """Each point's grid square as an offset into a table of squares, and the table's square
    numbers: every square within one of a point's square."""
    g = np.floor(q / np.float32(spacing)).astype(np.intp)
    g0 = int(g.min()) - 1
    return g - g0, np.arange(g0, int(g.max()) + 2, dtype=np.int64)


_OFFSETS = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]


def _cells(
    qx: npt.NDArray[np.float32],
    qy: npt.NDArray[np.float32],
    spacing: float,
    phase: float,
    p: TissueParams,
    tag: int,
) -> _Cells:
    """Cells of a power diagram (a Voronoi diagram whose points carry weights, which makes cell
    sizes vary) of one jittered point per grid square of side ``spacing``, at points ``qx``,
    ``qy`` (X, Y). The 3x3 squares around a point's square hold its cell's point and the
    neighbours sharing a boundary with it."""
    ix, tx = _table(qx, spacing)
    iy, ty = _table(qy, spacing)
    tx2, ty2 = tx[:, None], ty[None, :]
    u = [hash_uniform(p.seed, tag, i, tx2, ty2) for i in range(4)]
    angle = 2 * np.pi * u[2] + phase
    sx = ((tx2 + 0.2 + 0.6 * u[0] + p.drift * np.cos(angle)) * spacing).astype(np.float32)
    sy = ((ty2 + 0.2 + 0.6 * u[1] + p.drift * np.sin(angle)) * spacing).astype(np.float32)
    weight = ((p.size_spread * spacing) ** 2 * (2 * u[3] - 1)).astype(np.float32)
    n_y = len(ty)
    base = (ix * n_y + iy).astype(np.int32)
    steps = [dx * n_y + dy for dx, dy in _OFFSETS]
    sx_f, sy_f, w_f = sx.ravel(), sy.ravel(), weight.ravel()
    power = np.empty((len(steps), *qx.shape), dtype=np.float32)
    cand_x = []
    cand_y = []
    for k, step in enumerate(steps):
        f = base + np.int32(step)
        cand_x.append(np.take(sx_f, f))
        cand_y.append(np.take(sy_f, f))
        dx_ = qx - cand_x[k]
        dy_ = qy - cand_y[k]
        np.multiply(dx_, dx_, out=power[k])
        power[k] += dy_ * dy_
        power[k] -= np.take(w_f, f)
    best = np.argmin(power, axis=0)
    own = power.min(axis=0)
    step_best = np.take(np.array(steps, dtype=np.int32), best)
    cell = base + step_best
    ax = np.take(sx_f, cell)
    ay = np.take(sy_f, cell)
    # Distance to the boundary with neighbour b: (power_b - power_a) / 2|b - a|.
    edge = np.full(qx.shape, np.inf, dtype=np.float32)
    for k in range(len(steps)):
        vx = cand_x[k] - ax
        vy = cand_y[k] - ay
        sep = np.sqrt(vx * vx + vy * vy)
        sep[best == k] = np.nan  # the own point
        np.fmin(edge, (power[k] - own) / (2 * sep), out=edge)
    center = np.sqrt((qx - ax) ** 2 + (qy - ay) ** 2)
    return _Cells(np.maximum(edge, 0).astype(np.float32), center, cell, tx2, ty2)


def _warp(
    px: npt.NDArray[np.float32],
    py: npt.NDArray[np.float32],
    scale: float,
    phase: float,
    wobble: float,
    p: TissueParams,
    tag: int,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Pixel centres displaced by a smooth field (a few sinusoids of wavelength about
    ``2 * scale`` to ``4 * scale`` in random directions), so cell boundaries bend."""
    qx = np.broadcast_to(px[:, None], (len(px), len(py))).astype(np.float32)
    qy = np.broadcast_to(py[None, :], (len(px), len(py))).astype(np.float32)
    for k in range(3):
        u = hash_uniform(p.seed, tag, k, np.arange(5))
        wavelength = scale * (2 + 2 * u[0])
        theta = np.pi * u[1]
        fx = 2 * np.pi * np.cos(theta) / wavelength
        fy = 2 * np.pi * np.sin(theta) / wavelength
        amp = wobble * scale / 3
        # sin(a + b) = sin(a) cos(b) + cos(a) sin(b): the x and y parts are 1-D.
        cos_y = np.cos(fy * py.astype(np.float64)).astype(np.float32)[None, :]
        sin_y = np.sin(fy * py.astype(np.float64)).astype(np.float32)[None, :]
        for q, shift in ((qx, 2 * np.pi * u[2] + phase), (qy, 2 * np.pi * u[3] - phase)):
            a = fx * px.astype(np.float64) + shift
            q += (amp * np.sin(a)).astype(np.float32)[:, None] * cos_y
            q += (amp * np.cos(a)).astype(np.float32)[:, None] * sin_y
    return qx, qy


def _line(distance: npt.NDArray[np.float32], width: float, pixel: float) -> npt.NDArray[np.float32]:
    """Darkness profile (peak 1 at full resolution) of a line ``width`` nm wide seen through
    pixels ``pixel`` nm wide: a Gaussian widened by the pixel's box footprint, same integral."""
    sigma = float(np.sqrt(width**2 + pixel**2 / 12.0))
    return np.float32(width / sigma) * np.exp(np.float32(-0.5 / sigma**2) * distance * distance)


def _soft_step(
    signed: npt.NDArray[np.float32], edge: float, pixel: float
) -> npt.NDArray[np.float32]:
    """0..1 as ``signed`` (nm inside a boundary) goes from negative to positive, over a rim of
    ``edge`` nm widened by the pixel's footprint."""
    soft = np.float32(np.sqrt(edge**2 + pixel**2 / 12.0))
    return np.float32(1.0) / (
        np.float32(1.0) + np.exp(np.minimum(-signed / soft, np.float32(60.0)))
    )


def _organelles(
    p: TissueParams,
    px: npt.NDArray[np.float32],
    py: npt.NDArray[np.float32],
    phase: float,
    pixel: float,
) -> npt.NDArray[np.float32]:
    """Coverage (0..1) of the dark discs: at most one per grid square of ``organelle_spacing``,
    present with probability ``organelle_fraction``, with a soft rim widened by the pixel's
    footprint. Each pixel checks the discs of the 3x3 squares around it."""
    s = p.organelle_spacing
    ix, tx = _table(px, s)
    iy, ty = _table(py, s)
    tx2, ty2 = tx[:, None], ty[None, :]
    r_lo, r_hi = p.organelle_radius
    present = hash_uniform(p.seed, 31, tx2, ty2) < p.organelle_fraction
    angle = 2 * np.pi * hash_uniform(p.seed, 32, tx2, ty2) + phase
    cx = ((tx2 + 0.3 + 0.4 * hash_uniform(p.seed, 33, tx2, ty2) + 0.08 * np.cos(angle)) * s).astype(
        np.float32
    )
    cy = ((ty2 + 0.3 + 0.4 * hash_uniform(p.seed, 34, tx2, ty2) + 0.08 * np.sin(angle)) * s).astype(
        np.float32
    )
    radius = (r_lo + (r_hi - r_lo) * hash_uniform(p.seed, 35, tx2, ty2)).astype(np.float32)
    soft = np.float32(np.sqrt(p.organelle_edge**2 + pixel**2 / 12.0))
    # Signed distance to the nearest present disc's rim (absent discs are infinitely far).
    nearest = np.full((len(px), len(py)), np.inf, dtype=np.float32)
    for dx, dy in _OFFSETS:
        pick_x = ix + dx
        pick_y = iy + dy
        rim = np.sqrt(
            (px[:, None] - np.take(np.take(cx, pick_x, axis=0), pick_y, axis=1)) ** 2
            + (py[None, :] - np.take(np.take(cy, pick_x, axis=0), pick_y, axis=1)) ** 2
        ) - np.take(np.take(radius, pick_x, axis=0), pick_y, axis=1)
        rim[~np.take(np.take(present, pick_x, axis=0), pick_y, axis=1)] = np.inf
        np.minimum(nearest, rim, out=nearest)
    return np.float32(1.0) / (
        np.float32(1.0) + np.exp(np.minimum(nearest / soft, np.float32(60.0)))
    )


# --- rendering -----------------------------------------------------------------------------------


def render_section(
    params: TissueParams,
    resolution: Sequence[float],
    start: Sequence[int],
    shape: Sequence[int],
    z: int,
) -> npt.NDArray[np.uint8]:
    """Section ``z`` of the tissue, voxels ``start[0] : start[0] + shape[0]`` by
    ``start[1] : start[1] + shape[1]`` at ``resolution`` (x, y in nm), as an (X, Y) uint8 array.
    Pixel ``i`` covers ``[i * res, (i + 1) * res)`` and is rendered at its centre."""
    rx, ry = float(resolution[0]), float(resolution[1])
    if rx <= 0 or ry <= 0:
        raise ValueError(f"resolution: expected positive x and y, got {tuple(resolution)}")
    nx, ny = int(shape[0]), int(shape[1])
    if nx <= 0 or ny <= 0:
        raise ValueError(f"shape: expected positive x and y, got {tuple(shape)}")
    p = params
    ix = np.arange(int(start[0]), int(start[0]) + nx, dtype=np.int64)
    iy = np.arange(int(start[1]), int(start[1]) + ny, dtype=np.int64)
    px = ((ix + 0.5) * rx).astype(np.float32)
    py = ((iy + 0.5) * ry).astype(np.float32)
    pixel = float(np.sqrt(rx * ry))
    phase = 2 * np.pi * (z % p.z_period) / p.z_period

    qx, qy = _warp(px, py, p.neurite_spacing, phase, p.wobble, p, 3)
    neurites = _cells(qx, qy, p.neurite_spacing, phase, p, 1)
    lo, hi = p.neurite_grey
    value = neurites.lookup(
        lo + (hi - lo) * hash_uniform(p.seed, 11, neurites.table_x, neurites.table_y)
    )
    value -= np.float32(p.membrane_depth) * _line(neurites.edge_distance, p.membrane_width, pixel)
    del neurites
    qx, qy = _warp(px, py, p.compartment_spacing, -phase, p.wobble * 0.3, p, 4)
    rooms = _cells(qx, qy, p.compartment_spacing, -phase, p, 2)
    value += rooms.lookup(
        p.compartment_tint * (2 * hash_uniform(p.seed, 12, rooms.table_x, rooms.table_y) - 1)
    )
    # Some compartments are cell bodies: smooth cytoplasm around a nucleus with a dark envelope
    # and a nucleolus, in place of neurites.
    is_soma = rooms.lookup(
        (hash_uniform(p.seed, 13, rooms.table_x, rooms.table_y) < p.soma_fraction).astype(
            np.float64
        )
    )
    radius = rooms.lookup(
        p.nucleus_radius
        * p.compartment_spacing
        * (0.8 + 0.4 * hash_uniform(p.seed, 14, rooms.table_x, rooms.table_y))
    )
    inside = _soft_step(radius - rooms.center_distance, p.organelle_edge, pixel)
    soma = np.float32(p.soma_grey) - np.float32(p.soma_grey - p.nucleus_grey) * inside
    soma -= np.float32(p.membrane_depth) * _line(
        np.abs(rooms.center_distance - radius), p.membrane_width * 1.5, pixel
    )
    soma -= np.float32(p.nucleolus_depth) * _soft_step(
        np.float32(0.22) * radius - rooms.center_distance, p.organelle_edge, pixel
    )
    value = np.where(is_soma > 0.5, soma, value)
    value -= np.float32(p.sheath_depth) * _line(rooms.edge_distance, p.sheath_width, pixel)
    del rooms, soma, inside, radius, is_soma
    value -= np.float32(p.organelle_depth) * _organelles(p, px, py, phase, pixel)
    # Grain: two uniforms per pixel (a triangular distribution), keyed by the pixel's integer
    # coordinates and the resolution, so the chunks of a rendering agree with each other.
    res_key = round(rx * 1000) * 1_000_003 + round(ry * 1000)
    zk = z % p.z_period
    u = hash_uniform(p.seed, 21, res_key, zk, ix[:, None], iy[None, :])
    u += hash_uniform(p.seed, 22, res_key, zk, ix[:, None], iy[None, :])
    value += (np.float32(p.grain * np.sqrt(4.0 / pixel)) * (u - 1.0)).astype(np.float32)
    return np.clip(np.floor(value + np.float32(0.5)), 0, 255).astype(np.uint8)
