"""The summary printed before a subchunkable run: region, levels, task counts, bytes to move."""

from __future__ import annotations

import json
import math
import urllib.parse
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from .chunk_grid import Box
from .reduction import level_schedule
from .volumetric_apply_flow import (
    SubchunkablePlan,
    _voxel_bytes,
    _wave_axis,
    as_run,
    dst_writes,
    kept_rows_bytes,
    reads_ahead,
    reduction_count,
    section_waves,
)
from .volumetric_apply_flow import (
    declare_expected_tasks as declare_expected_tasks,
)
from .volumetric_apply_flow import (
    expected_tasks as expected_tasks,
)
from .volumetric_callable_operation import is_layer

NG_URL = "https://neuroglancer-demo.appspot.com/#!"


def _fmt(v: Any) -> str:
    return "(" + ", ".join(str(x) for x in v) + ")"


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def level_counts(plan: SubchunkablePlan) -> list[int]:
    """How many chunks each level computes in the whole run (top level first)."""
    top = plan.top_grid
    counts = [top.num_chunks]
    out_box = top.padded((0, 0, 0))
    for level in range(1, plan.num_levels):
        grid = plan.level_grid(level, out_box)
        keys = list(grid.keys_overlapping(out_box))
        counts.append(counts[-1] * len(keys))
        out_box = grid.padded(keys[0])
    return counts


def estimate(plan: SubchunkablePlan) -> dict[str, float]:
    """Bytes read from inputs, written to dst, and held in intermediaries."""
    counts = level_counts(plan)
    input_bpv = sum(_voxel_bytes(v) for v in plan.op_kwargs.values() if is_layer(v))
    level = plan.prefetch_level if plan.prefetch_level is not None else plan.num_levels - 1
    chunk = Box.of((0, 0, 0), plan.chunk_sizes[level]).padded(plan.blend_pads[level])
    read_box = chunk.padded(plan.input_context(level))
    reads = counts[level] * read_box.size() * input_bpv
    dst_bpv = _voxel_bytes(plan.dst) if plan.dst is not None else 0
    writes = dst_writes(plan)[1] * dst_bpv
    inter = 0.0
    top_out = (
        Box.of((0, 0, 0), plan.chunk_sizes[0]).padded(plan.blend_pads[0]).size() * plan.num_channels
    )
    if plan.store is not None:
        inter = counts[0] * top_out / plan.num_channels * dst_bpv
    memory = worker_memory(
        plan, read_box.size() * input_bpv + _storage_chunks_bytes(plan, read_box.shape)
    )
    memory += _read_ahead_bytes(plan, read_box)
    reduction = reduction_memory(plan)
    # the caches of decoded input chunks stay in the worker from task to task
    cache = _input_cache_bytes(plan, level, read_box)
    # and so do the rows kept for reductions (more where they stay in memory only: with one
    # process, which the plan does not know, and in section tasks)
    memory += cache + kept_rows_bytes(plan, in_memory=not plan.keep_intermediaries)
    reduction += cache if reduction else 0.0
    return {
        "read": reads,
        "write": writes,
        "intermediaries": inter,
        "memory": memory,
        "reduction_memory": reduction,
        "peak_memory": max(memory, reduction),
    }


def _read_ahead_bytes(plan: SubchunkablePlan, read_box: Box) -> float:
    """The inputs read ahead (``zetta_utils.layer.volumetric.read_ahead``: remote volumes the run
    only reads) held while a task runs: the next task's chunks, and in section tasks the next
    chunks of the task too (``read_ahead_steps``)."""
    run = as_run(plan)
    layers = run.read_ahead_layers
    if not layers:
        return 0.0
    per_chunk = read_box.size() * sum(_voxel_bytes(v) for v in layers)
    if plan.prefetch_level == 0:
        if section_waves(plan) is None:
            return per_chunk
        return per_chunk * (1 + run.read_ahead_steps)
    return per_chunk * plan.task_stack_size


def _most_chunks_met(length: int, chunk: int) -> int:
    """The most chunks of a grid of pitch ``chunk`` that an interval of ``length`` meets."""
    return 0 if length <= 0 else -(-(length - 1) // chunk) + 1


def _storage_chunks_bytes(plan: SubchunkablePlan, read_shape: Sequence[int]) -> float:
    """Bytes of the whole storage chunks of the input layers that a read of ``read_shape``
    meets: the backends read whole chunks before cutting the region out of them."""
    total = 0.0
    for value in plan.op_kwargs.values():
        if not is_layer(value):
            continue
        try:
            chunk = value.backend.get_chunk_size(plan.dst_resolution)
        except Exception:
            continue
        count = math.prod(
            _most_chunks_met(int(n), int(c)) for n, c in zip(read_shape, chunk, strict=True)
        )
        total += count * math.prod(int(c) for c in chunk) * _voxel_bytes(value)
    return total


def _input_cache_bytes(plan: SubchunkablePlan, level: int, read_box: Box) -> float:
    """Bytes of the caches of decoded storage chunks that the prefetches of the input layers
    read through (``layer_wrappers.chunk_cached``: sized for a row of the region's chunks and the
    read box), for the layers not read straight from their chunk files."""
    from .layer_wrappers import _CACHE_STEP, PREFETCH_CACHE_BYTES, _reads_chunk_files

    if plan.prefetch_level is None:
        return 0.0
    region = plan.processing_region.padded(plan.blend_pads[0]).padded(plan.input_context(level))
    row = (region.shape[0], read_box.shape[1], read_box.shape[2])
    total = 0.0
    for value in plan.op_kwargs.values():
        if not is_layer(value) or not hasattr(value.backend, "get_chunk_size"):
            continue
        try:
            chunk = value.backend.get_chunk_size(plan.input_resolution)
            reads_files = _reads_chunk_files(value.backend, plan.input_resolution)
        except Exception:
            continue
        if reads_files:
            continue
        count = sum(
            math.prod(_most_chunks_met(int(n), int(c)) for n, c in zip(shape, chunk, strict=True))
            for shape in (row, read_box.shape)
        )
        need = count * math.prod(int(c) for c in chunk) * _voxel_bytes(value)
        total += min(PREFETCH_CACHE_BYTES, max(1, math.ceil(need / _CACHE_STEP)) * _CACHE_STEP)
    return total


def reduction_memory(plan: SubchunkablePlan) -> float:
    """Bound on the bytes a reduction task holds: its output box, every top-level chunk's
    padded output that meets the box (read at once), and a float buffer of one such output
    for the cells it sums; and the frames the previous reduction kept (at
    most its padded outputs; twice that where rows stay in memory only, see
    :func:`.volumetric_apply_flow.kept_rows_bytes`). 0 when the run has no reduction."""
    if (
        plan.reduction_chunk is None
        or plan.top_mode != "pieces"
        or plan.deferred
        or plan.dst is None
    ):
        return 0.0
    import torch

    out_bpv = torch.empty(0, dtype=plan.dtype).element_size() * plan.num_channels
    acc_bpv = (4 if out_bpv // plan.num_channels <= 2 else 8) * plan.num_channels
    chunk, blend = plan.chunk_sizes[0], plan.blend_pads[0]
    box = [
        min(int(r), int(n)) for r, n in zip(plan.reduction_chunk, plan.region.shape, strict=True)
    ]
    pieces = math.prod(
        _most_chunks_met(b + 2 * p, c) for b, p, c in zip(box, blend, chunk, strict=True)
    )
    padded = math.prod(c + 2 * p for c, p in zip(chunk, blend, strict=True))
    read = pieces * padded * out_bpv
    kept = read if plan.store is not None and plan.store.keeps_frames else 0
    kept *= 1 if plan.keep_intermediaries else 2
    return float(math.prod(box) * out_bpv + read + kept + padded * acc_bpv)


def worker_memory(plan: SubchunkablePlan, input_bytes: float) -> float:
    """Rough peak bytes a worker holds for one top-level task: the prefetched input, the padded
    output of each level's current chunk, and the band buffers of each level that blends the one
    below (the lower levels are combined in memory)."""
    import torch

    out_bpv = torch.empty(0, dtype=plan.dtype).element_size() * plan.num_channels
    acc_bpv = (4 if out_bpv // plan.num_channels <= 2 else 8) * plan.num_channels
    total = float(input_bytes)
    for level in range(plan.num_levels):
        padded = Box.of((0, 0, 0), plan.chunk_sizes[level]).padded(plan.blend_pads[level])
        total += padded.size() * out_bpv
        if level + 1 < plan.num_levels and any(plan.blend_pads[level + 1]):
            mode = plan.blend_modes[level + 1]
            schedule = level_schedule(
                padded.shape,
                plan.crop_pads[level],
                plan.chunk_sizes[level + 1],
                plan.blend_pads[level + 1],
                mode,
                plan.dtype,
            )
            total += sum(math.prod(shape) for _, shape in schedule.regions) * (
                out_bpv if mode == "max" else acc_bpv
            )
    return total


def ng_link(plan: SubchunkablePlan) -> str | None:
    if plan.dst is None:
        return None
    res = plan.dst_resolution
    center = [(a + b) / 2 for a, b in zip(plan.region.start, plan.region.stop, strict=True)]
    state = {
        "dimensions": {d: [float(r) * 1e-9, "m"] for d, r in zip("xyz", res, strict=True)},
        "position": center,
        "layers": [{"type": "image", "source": "precomputed://" + plan.dst.name, "name": "dst"}],
        "layout": "xy",
    }
    return NG_URL + urllib.parse.quote(json.dumps(state, separators=(",", ":")))


def print_plan_summary(
    plan: SubchunkablePlan,
    facts: dict[str, Any],
    generate_ng_link: bool = False,
    console: Console | None = None,
) -> None:
    if console is None:
        console = _default_console()
    console.rule(f"[bold]SubchunkableApplyFlow: {plan.task_name or plan.op_name}")
    console.print(_info_table(plan, facts, generate_ng_link))
    console.print(_levels_table(plan))
    footer = _footer(plan, facts)
    if footer:
        console.print(footer)
    console.rule()


def _default_console() -> Console:
    """The terminal's console; 132 columns when the output is not a terminal (a log file)."""
    console = Console()
    return console if console.is_terminal else Console(width=132)


Row = tuple[str, str]


def _info_table(plan: SubchunkablePlan, facts: dict[str, Any], generate_ng_link: bool) -> Table:
    """The run at a glance: where, how outputs reach ``dst``, and what it costs."""
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    rows = [*_region_rows(plan, facts), *_output_rows(plan, facts), *_cost_rows(plan)]
    if generate_ng_link:
        link = ng_link(plan)
        if link:
            rows.append(("neuroglancer", link))
    for row in rows:
        info.add_row(*row)
    return info


def _region_rows(plan: SubchunkablePlan, facts: dict[str, Any]) -> list[Row]:
    """The region processed (and the one asked for, when the plan changed it)."""
    res, region = plan.dst_resolution, plan.region
    rows = []
    original: Box = facts["original_region"]
    if original != region:
        rows.append(
            ("requested region", f"{original.pformat()} voxels, shape {_fmt(original.shape)}")
        )
    rows.append(
        (
            "region",
            f"{region.pformat()} voxels at {_fmt(res)} nm, shape {_fmt(region.shape)} "
            f"({region.size() * math.prod(res) * 1e-9:.3f} um^3)",
        )
    )
    if any(plan.roi_crop_pad):
        rows.append(("roi_crop_pad", _fmt(plan.roi_crop_pad)))
    if any(plan.gap):
        rows.append(("processing_gap", _fmt(plan.gap)))
    return rows


_HOW_OUTPUTS_REACH_DST = {
    "skip": "bottom-level chunks written straight to dst (skip_intermediaries)",
    "direct": "top-level chunks written straight to dst (aligned, no overlap)",
    "pieces": "top-level outputs via intermediaries, then reduction",
}


def _output_rows(plan: SubchunkablePlan, facts: dict[str, Any]) -> list[Row]:
    """Where the outputs go: ``dst``, the intermediaries and the reduction."""
    rows = [("dst", plan.dst.name if plan.dst is not None else "None (the op writes by itself)")]
    how = _HOW_OUTPUTS_REACH_DST[plan.top_mode]
    if plan.deferred:
        how = "top-level outputs left in the intermediaries (defer): no reduction"
    rows.append(("output", how))
    if plan.store is not None:
        rows.append(("intermediaries", plan.store.path))
    if plan.reduction_chunk is not None and plan.top_mode == "pieces" and not plan.deferred:
        rows.append(
            (
                "reduction",
                f"{reduction_count(plan)} tasks of up to {_fmt(plan.reduction_chunk)} voxels "
                f"(whole dst chunks of {_fmt(facts.get('dst_chunk') or ())})",
            )
        )
    waves = section_waves(plan)
    if waves is not None:
        axis = "xyz"[_wave_axis(plan.top_grid.counts)]
        rows.append(
            (
                "section tasks",
                f"with -p > 1 or remote workers: {waves} tasks instead, each the top-level "
                f"chunks of one {axis} section and their reduction (ZETTA_SECTION_TASKS=0: apart)",
            )
        )
    return rows


def _cost_rows(plan: SubchunkablePlan) -> list[Row]:
    """The estimated bytes read, written, kept in intermediaries and held by a worker."""
    est = estimate(plan)
    files = _count(dst_writes(plan)[0], "chunk file")
    rows = [
        ("to read", _bytes(est["read"]) + " from op_kwargs layers"),
        ("to write", _bytes(est["write"]) + f" to dst ({files})"),
    ]
    if plan.store is not None:
        # (a run in one process keeps them in memory instead: see .intermediaries)
        if plan.keep_intermediaries or plan.deferred:
            how = "written and read once"
        elif section_waves(plan) is not None:
            how = "in memory, with -p 1 and in section tasks"
        else:
            how = "in memory with -p 1, else written and read once"
        rows.append(("intermediaries size", _bytes(est["intermediaries"]) + f" ({how})"))
    memory = (
        "about "
        + _bytes(est["memory"])
        + " per task running (input and its storage chunks, "
        + ("inputs read ahead, " if reads_ahead(plan) else "")
        + "outputs, blend buffers)"
    )
    if est["reduction_memory"]:
        memory += f", at most {_bytes(est['reduction_memory'])} per reduction task"
    rows.append(("worker memory", memory))
    return rows


_LEVEL_COLUMNS = (
    "level",
    "chunk",
    "crop pad",
    "blend pad",
    "blend mode",
    "chunks",
    "tasks",
    "reads inputs",
)


def _levels_table(plan: SubchunkablePlan) -> Table:
    """One row per level, largest first: its geometry, chunk and task counts, and its reads."""
    counts = level_counts(plan)
    table = Table(title="levels (largest first)")
    for col in _LEVEL_COLUMNS:
        table.add_column(col, justify="right" if col in ("chunks", "tasks") else "left")
    for i in range(plan.num_levels):
        tasks = str(math.ceil(counts[0] / plan.task_stack_size)) if i == 0 else "in top task"
        table.add_row(
            f"{i} (level {plan.num_levels - 1 - i} from the bottom)",
            _fmt(plan.chunk_sizes[i]),
            _fmt(plan.crop_pads[i]),
            _fmt(plan.blend_pads[i]),
            plan.blend_modes[i],
            str(counts[i]),
            tasks,
            _reads_inputs(plan, i),
        )
    return table


def _reads_inputs(plan: SubchunkablePlan, level: int) -> str:
    """How a level's chunks get their input: read and cached, read, from the cache, or not."""
    bottom = plan.num_levels - 1
    if plan.prefetch_level == level:
        return "once per chunk (cached)"
    if level == bottom and plan.prefetch_level is None:
        return "per chunk"
    if level == bottom:
        return "from cache"
    return ""


def _footer(plan: SubchunkablePlan, facts: dict[str, Any]) -> str:
    """The intermediary files per top-level chunk and the cache level, when there are any."""
    extra = []
    if plan.store is not None:
        extra.append(f"intermediary files per top-level chunk: {len(plan.store.volumes())}")
    cache = facts.get("allow_cache_up_to_level")
    if cache is not None:
        extra.append(f"allow_cache_up_to_level: {cache}")
    return "  ".join(extra)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
