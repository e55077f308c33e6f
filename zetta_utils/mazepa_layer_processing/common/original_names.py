"""Flows and operations of the original's ``mazepa_layer_processing.common`` that this project
replaces, registered so that a spec naming one is told what to use instead."""

from __future__ import annotations

from zetta_utils import builder

_SUBCHUNKABLE = (
    "use build_subchunkable_apply_flow (fn or op, op_kwargs with the source layers, "
    "processing_chunk_sizes, dst, dst_resolution and the region)"
)

_REPLACED: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("build_chunked_apply_flow", ("task_factory", "chunker", "operation"), _SUBCHUNKABLE),
    ("build_chunked_apply_callable_flow_type", ("fn", "chunker"), _SUBCHUNKABLE),
    ("build_chunked_callable_flow_schema", ("fn", "chunker"), _SUBCHUNKABLE),
    (
        "build_chunked_volumetric_callable_flow_schema",
        ("fn", "chunker", "crop_pad", "res_change_mult"),
        _SUBCHUNKABLE,
    ),
    ("build_chunked_write_flow", ("chunker",), _SUBCHUNKABLE + " with fn `lambda src: src`"),
    (
        "chunked_write",
        ("chunker", "idx", "dst", "src"),
        _SUBCHUNKABLE + " with fn `lambda src: src`",
    ),
    (
        "generic_write_flow",
        ("chunker", "idx", "dst", "src"),
        _SUBCHUNKABLE + " with fn `lambda src: src`",
    ),
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
    (
        "CallableOperation",
        ("fn",),
        "use VolumetricCallableOperation, or fn in build_subchunkable_apply_flow",
    ),
    (
        "StackedVolumetricOperations",
        ("base_op",),
        "give `task_stack_size` to build_subchunkable_apply_flow "
        "to batch bottom-level chunks per task",
    ),
)

_REPLACED += (
    (
        "SegContactOp",
        ("crop_pad", "min_seg_size_vx", "min_overlap_vx", "min_contact_vx", "max_contact_vx"),
        "segment contact layers (seg_contact) are not part of this project",
    ),
)

for _name, _params, _replacement in _REPLACED:
    builder.register_unsupported(_name, _params, _replacement)
