"""The ``"@type"`` names the original zetta_utils registers in the parts this project
implements (geometry, layer and its backends, builder built-ins, mazepa and its executors,
mazepa_layer_processing.common, tensor_ops), with the argument names of their registrations.

Gathered from the original's source (``zetta_utils/**``, ``@builder.register(...)`` and
``builder.register(...)(...)`` calls, across its history where a name's arguments changed, so
that specs of either era keep working); ``version`` is the spec version a version-ranged
registration serves. ``replaced`` marks names this project deliberately does not implement:
building them must raise an error saying what replaces them. ``pending`` names the part of the
project still being brought in line (the test expects those entries to fail until then).
"""

from __future__ import annotations

from typing import NamedTuple


class Original(NamedTuple):
    name: str
    params: tuple[str, ...]
    version: str = "0.4"
    replaced: bool = False
    pending: str | None = None


_LAYER_PROCS = ("allow_slice_rounding", "index_procs", "read_procs", "write_procs")
_LAYER_FRONTEND = (
    "default_desired_resolution",
    "index_resolution",
    "data_resolution",
    "interpolation_mode",
    "readonly",
)
_INFO_V04 = (
    "info_reference_path",
    "info_inherit_all_params",
    "info_type",
    "info_data_type",
    "info_num_channels",
    "info_chunk_size",
    "info_bbox",
    "info_encoding",
    "info_scales",
    "info_extra_scale_data",
    "info_overwrite",
    "info_keep_existing_scales",
)
_INFO_V03 = (
    "info_extend_if_exists",
    "info_reference_path",
    "info_type",
    "info_data_type",
    "info_num_channels",
    "info_field_overrides",
    "info_chunk_size",
    "info_chunk_size_map",
    "info_dataset_size",
    "info_dataset_size_map",
    "info_voxel_offset",
    "info_voxel_offset_map",
    "info_encoding",
    "info_encoding_map",
    "info_add_scales",
    "info_add_scales_ref",
    "info_add_scales_exclude_fields",
    "info_add_scales_mode",
    "info_only_retain_scales",
    "on_info_exists",
)
_LAYERS = "layer builders (layer/**)"
_VCO = "VolumetricCallableOperation (mazepa_layer_processing/common)"

_SUBCHUNKABLE_PARAMS = (
    "fn",
    "fn_semaphores",
    "op",
    "op_args",
    "op_kwargs",
    "start_coord",
    "end_coord",
    "coord_resolution",
    "auto_bbox",
    "dst_resolution",
    "dst",
    "processing_chunk_sizes",
    "processing_gap",
    "processing_crop_pads",
    "processing_blend_pads",
    "processing_blend_modes",
    "level_intermediaries_dirs",
    "skip_intermediaries",
    "max_reduction_chunk_size",
    "max_reduction_chunk_sizes",
    "expand_bbox_resolution",
    "expand_bbox_backend",
    "expand_bbox_processing",
    "shrink_processing_chunk",
    "auto_divisibility",
    "allow_cache_up_to_level",
    "print_summary",
    "generate_ng_link",
    "op_worker_type",
    "reduction_worker_type",
    "task_stack_size",
    "bbox",
    "dst_tighten_bounds",
)

ORIGINAL_REGISTRY: tuple[Original, ...] = (
    # --- builder built-ins -------------------------------------------------------------------
    Original("lambda", ("lambda_str", "name")),
    Original("invoke_lambda_str", ("lambda_str",)),
    # --- geometry ----------------------------------------------------------------------------
    Original("BBox3D.from_coords", ("start_coord", "end_coord", "resolution", "unit")),
    Original("BBox3D.from_slices", ("slices", "resolution", "unit")),
    Original("BBox3D.from_points", ("points", "resolution", "unit", "epsilon")),
    Original(
        "BBoxStrider",
        (
            "bbox",
            "resolution",
            "chunk_size",
            "stride",
            "max_superchunk_size",
            "stride_start_offset_in_unit",
            "mode",
        ),
        replaced=True,
    ),
    # --- layer and its backends --------------------------------------------------------------
    Original("build_volumetric_layer", ("backend", *_LAYER_FRONTEND, *_LAYER_PROCS)),
    Original(
        "build_cv_layer",
        ("path", "cv_kwargs", *_LAYER_FRONTEND, *_INFO_V04, *_LAYER_PROCS, "cache_bytes_limit"),
    ),
    Original(
        "build_cv_layer",
        ("path", "cv_kwargs", *_LAYER_FRONTEND, *_INFO_V03, *_LAYER_PROCS, "cache_bytes_limit"),
        version="0.3",
    ),
    Original(
        "build_ts_layer",
        (
            "path",
            *_LAYER_FRONTEND,
            *(p for p in _INFO_V04),
            "info_dataset_size",
            "info_voxel_offset",
            "info_add_scales",
            "inherit_all_params",
            "on_info_exists",
            "cache_bytes_limit",
            *_LAYER_PROCS,
        ),
    ),
    Original(
        "build_ts_layer",
        ("path", *_LAYER_FRONTEND, *_INFO_V03, "cache_bytes_limit", *_LAYER_PROCS),
        version="0.3",
    ),
    Original("build_layer_set", ("layers", "readonly", "index_procs", "read_procs", "write_procs")),
    Original(
        "build_constant_volumetric_layer",
        ("value", "num_channels", *_LAYER_FRONTEND[:4], *_LAYER_PROCS[:3]),
        pending=_LAYERS,
    ),
    Original(
        "build_volumetric_layer_set",
        ("layers", "default_desired_resolution", "index_resolution", "readonly", *_LAYER_PROCS),
    ),
    Original("VolumetricIndexTranslator", ("offset", "resolution"), pending=_LAYERS),
    Original(
        "VolumetricIndexOverrider",
        ("override_offset", "override_size", "override_resolution"),
        pending=_LAYERS,
    ),
    Original("VolumetricIndexPadder", ("pad",), pending=_LAYERS),
    Original(
        "DataResolutionInterpolator",
        ("data_resolution", "interpolation_mode", "allow_slice_rounding"),
        pending=_LAYERS,
    ),
    Original("InvertProcessor", ("invert",), pending=_LAYERS),
    Original(
        "ROIMaskProcessor", ("start_coord", "end_coord", "resolution", "targets"), pending=_LAYERS
    ),
    # --- mazepa and its executors ------------------------------------------------------------
    Original(
        "mazepa.execute",
        (
            "target",
            "task_queue",
            "outcome_queue",
            "max_batch_len",
            "batch_gap_sleep_sec",
            "state_constructor",
            "execution_id",
            "raise_on_failed_task",
            "do_dryrun_estimation",
            "show_progress",
            "checkpoint",
            "checkpoint_interval_sec",
            "raise_on_failed_checkpoint",
            "write_progress_summary",
            "require_interrupt_confirm",
        ),
    ),
    Original(
        "mazepa.execute_locally",
        (
            "target",
            "max_batch_len",
            "batch_gap_sleep_sec",
            "state_constructor",
            "execution_id",
            "raise_on_failed_task",
            "do_dryrun_estimation",
            "show_progress",
            "checkpoint",
            "queues_dir",
            "checkpoint_interval_sec",
            "raise_on_failed_checkpoint",
            "num_procs",
            "semaphores_spec",
            "debug",
            "write_progress_summary",
            "require_interrupt_confirm",
            "suppress_worker_logs",
            "resource_monitor_interval",
        ),
    ),
    Original("mazepa.seq_flow", ("stages",)),
    Original("mazepa.sequential_flow", ("stages",)),
    Original("mazepa.concurrent_flow", ("stages",)),
    Original("mazepa.run_worker", ("task_queue", "outcome_queue", "sleep_sec"), replaced=True),
    Original(
        "mazepa.run_worker_manager",
        (
            "task_queue",
            "outcome_queue",
            "sleep_sec",
            "num_procs",
            "semaphores_spec",
            "idle_timeout",
        ),
        replaced=True,
    ),
    Original("mazepa.TaskRouter", ("queues",), replaced=True),
    Original("mazepa.AutoexecuteTaskQueue", ("debug",), replaced=True),
    Original("mazepa.SQSExecutionQueue", ("name",), replaced=True),
    Original("mazepa.ExecutionMultiQueue", ("queues",), replaced=True),
    Original("mazepa.SubflowTask", ("flow",), replaced=True),
    Original(
        "mazepa.execute_on_gcp_with_sqs",
        (
            "target",
            "worker_image",
            "worker_cluster_name",
            "worker_cluster_region",
            "worker_cluster_project",
            "worker_resources",
            "worker_replicas",
            "local_test",
        ),
    ),
    # --- mazepa_layer_processing.common ------------------------------------------------------
    Original("build_subchunkable_apply_flow", _SUBCHUNKABLE_PARAMS),
    Original(
        "build_postpad_subchunkable_apply_flow",
        (
            "dst",
            "dst_resolution",
            "processing_input_sizes",
            "processing_crop",
            "processing_blend",
            "processing_blend_mode",
        ),
    ),
    Original(
        "VolumetricCallableOperation",
        ("fn", "crop_pad", "res_change_mult", "operation_name"),
        pending=_VCO,
    ),
    Original("build_chunked_apply_flow", ("task_factory", "chunker"), replaced=True),
    Original("build_chunked_apply_callable_flow_type", ("fn", "chunker"), replaced=True),
    Original("build_chunked_callable_flow_schema", ("fn", "chunker"), replaced=True),
    Original(
        "build_chunked_volumetric_callable_flow_schema",
        ("fn", "chunker", "crop_pad", "res_change_mult"),
        replaced=True,
    ),
    Original("build_chunked_write_flow", ("chunker",), replaced=True),
    Original("chunked_write", ("chunker", "idx", "dst", "src"), replaced=True),
    Original("generic_write_flow", ("chunker", "idx", "dst", "src"), replaced=True),
    Original(
        "build_write_flow", ("chunk_size", "bcube", "dst_resolution", "dst", "src"), replaced=True
    ),
    Original(
        "build_apply_mask_flow",
        ("chunk_size", "bcube", "dst_resolution", "src", "dst", "mask", "fill_value"),
        replaced=True,
    ),
    Original("CallableOperation", ("fn",), replaced=True),
    Original("InterpolateOperation", ("res_change_mult", "mode", "mask_value_thr")),
    Original(
        "build_interpolate_flow",
        (
            "src",
            "dst",
            "src_resolution",
            "dst_resolutions",
            "mode",
            "processing_chunk_sizes",
            "level_intermediaries_dirs",
            "skip_intermediaries",
            "expand_bbox_resolution",
            "expand_bbox_backend",
            "expand_bbox_processing",
            "shrink_processing_chunk",
            "auto_divisibility",
            "bbox",
            "auto_bbox",
            "dst_tighten_bounds",
        ),
    ),
    Original("StackedVolumetricOperations", ("base_op",), replaced=True),
    Original(
        "SegContactOp",
        ("crop_pad", "min_seg_size_vx", "min_overlap_vx", "min_contact_vx", "max_contact_vx"),
        replaced=True,
    ),
    # --- tensor_ops --------------------------------------------------------------------------
    Original("rearrange", ("data", "pattern")),
    Original("reduce", ("data",)),
    Original("repeat", ("data",)),
    Original("multiply", ("data", "value")),
    Original("add", ("data", "value")),
    Original("power", ("data", "value")),
    Original("divide", ("data", "value")),
    Original("int_divide", ("data", "value")),
    Original("unsqueeze", ("data", "dim")),
    Original("squeeze", ("data", "dim")),
    Original("unsqueeze_to", ("data", "ndim")),
    Original("squeeze_to", ("data", "ndim")),
    Original(
        "interpolate",
        (
            "data",
            "size",
            "scale_factor",
            "mode",
            "mask_value_thr",
            "allow_slice_rounding",
            "unsqueeze_input_to",
        ),
    ),
    Original("compare", ("data", "mode", "value", "binarize", "fill")),
    Original("crop", ("data", "crop")),
    Original("crop_center", ("data", "size")),
    Original("clone", ("data",)),
    Original("tensor_op_chain", ("data", "steps")),
    Original("abs", ("data",)),
    Original("pad_center_to", ("data", "shape", "mode", "value")),
    Original("split_reduce", ("data", "paths", "reduce_mode")),
    Original("to_float32", ("data",)),
    Original("to_uint8", ("data",)),
    Original("filter_cc", ("data", "mode", "thr")),
    Original("coarsen_mask", ("data", "width", "thr")),
    Original("coarsen", ("data", "width", "thr")),
    Original("erode", ("data", "width", "thr")),
    Original("binary_closing", ("data", "iterations", "width")),
    Original("kornia_opening", ("data", "kernel", "device", "width")),
    Original("kornia_closing", ("data", "kernel", "device", "width")),
    Original("kornia_erosion", ("data", "kernel", "device", "width")),
    Original("kornia_dilation", ("data", "kernel", "device", "width")),
    Original("get_disp_pair", ("data", "disp")),
    Original("seg_to_aff", ("data", "edge", "mask")),
    Original("seg_to_rgb", ("data",)),
    Original("compute_pixel_error", ("data1", "data2", "erosion")),
    Original("erode_combine", ("data1", "data2", "erosion")),
    Original("first_hit_projection", ("data", "bg_color", "axis", "direction", "rtol", "atol")),
    Original("nanmedian_filter", ("data", "axis", "sigma", "threshold", "fill_value")),
    Original(
        "get_affine_field",
        ("size", "trans_x_px", "trans_y_px", "rot_deg", "shear_x_deg", "shear_y_deg", "scale"),
        replaced=True,
    ),
    Original("rand_perlin_2d", ("shape", "res", "fade", "device"), replaced=True),
    Original(
        "rand_perlin_2d_octaves",
        ("shape", "res", "octaves", "persistence", "device"),
        replaced=True,
    ),
    Original("apply_clahe", ("data", "clip_limit", "tile_grid_size"), replaced=True),
)
