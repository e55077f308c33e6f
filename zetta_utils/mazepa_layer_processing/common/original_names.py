"""Flows and operations of the original's ``mazepa_layer_processing.common`` that this project
replaces, registered so that a spec naming one is told what to use instead."""

from __future__ import annotations

from zetta_utils import builder

_SUBCHUNKABLE = (
    "use build_subchunkable_apply_flow (fn or op, op_kwargs with the source layers, "
    "processing_chunk_sizes, dst, dst_resolution and the region)"
)
_INTERPOLATE = (
    "use build_subchunkable_apply_flow with fn {\"@type\": \"lambda\", \"lambda_str\": \"lambda src: src\"} "
    "and op_kwargs.src a layer read at the source resolution (its data_resolution and "
    "interpolation_mode set), once per destination resolution inside a mazepa.seq_flow"
)

_REPLACED: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("build_chunked_apply_flow", ("task_factory", "chunker", "operation"), _SUBCHUNKABLE),
    ("build_chunked_apply_callable_flow_type", ("fn", "chunker"), _SUBCHUNKABLE),
    ("build_chunked_callable_flow_schema", ("fn", "chunker"), _SUBCHUNKABLE),
    ("build_chunked_volumetric_callable_flow_schema", ("fn", "chunker", "crop_pad", "res_change_mult"), _SUBCHUNKABLE),
    ("build_chunked_write_flow", ("chunker",), _SUBCHUNKABLE + " with fn `lambda src: src`"),
    ("chunked_write", ("chunker", "idx", "dst", "src"), _SUBCHUNKABLE + " with fn `lambda src: src`"),
    ("generic_write_flow", ("chunker", "idx", "dst", "src"), _SUBCHUNKABLE + " with fn `lambda src: src`"),
    (
        "build_write_flow",
        ("chunk_size", "bcube", "bbox", "dst_resolution", "dst", "src"),
        _SUBCHUNKABLE + " with fn `lambda src: src`",
    ),
    (
        "build_apply_mask_flow",
        ("chunk_size", "bcube", "bbox", "dst_resolution", "src", "dst", "mask", "fill_value"),
        _SUBCHUNKABLE + " with fn `lambda src, mask: torch.where(mask > 0, fill_value, src)`",
    ),
    ("CallableOperation", ("fn",), "use VolumetricCallableOperation, or fn in build_subchunkable_apply_flow"),
    (
        "InterpolateOperation",
        ("res_change_mult", "mode", "mask_value_thr"),
        _INTERPOLATE,
    ),
    (
        "build_interpolate_flow",
        (
            "src", "dst", "src_resolution", "dst_resolutions", "mode", "processing_chunk_sizes",
            "level_intermediaries_dirs", "skip_intermediaries", "expand_bbox_resolution",
            "expand_bbox_backend", "expand_bbox_processing", "shrink_processing_chunk",
            "auto_divisibility", "bbox", "auto_bbox", "dst_tighten_bounds",
        ),
        _INTERPOLATE,
    ),
    (
        "StackedVolumetricOperations",
        ("base_op",),
        "give `task_stack_size` to build_subchunkable_apply_flow to batch bottom-level chunks per task",
    ),
)

for _name, _params, _replacement in _REPLACED:
    builder.register_unsupported(_name, _params, _replacement)
