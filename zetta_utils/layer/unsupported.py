"""Layer types of the original that this project does not include, registered so that a spec
naming one gets a message saying what to use instead (not an unknown-type error)."""

from __future__ import annotations

from zetta_utils import builder

_NO_DB = (
    "database layers (Google Datastore / Firestore) are not part of this project; keep such "
    "records in your own store and pass them to a flow as plain arguments"
)
_NO_ANNOTATIONS = (
    "precomputed annotation layers are not part of this project (it handles volumetric "
    "precomputed images and segmentations: build_cv_layer / build_ts_layer)"
)
_NO_CONTACTS = (
    "contact and tabular layers (chunked records beside a segmentation) are not part of this "
    "project; write such records from an operation of your own"
)

builder.register_unsupported(
    "build_db_layer", ("backend", "readonly", "index_procs", "read_procs", "write_procs"), _NO_DB
)
builder.register_unsupported(
    "build_datastore_layer",
    ("namespace", "project", "database", "exclude_from_indexes", "readonly"),
    _NO_DB,
)
builder.register_unsupported(
    "build_firestore_layer", ("collection", "database", "project", "readonly"), _NO_DB
)
builder.register_unsupported(
    "build_annotation_layer",
    (
        "path",
        "resolution",
        "dataset_size",
        "voxel_offset",
        "index",
        "bbox",
        "chunk_sizes",
        "mode",
        "annotation_type",
        "default_desired_resolution",
        "index_resolution",
        "allow_slice_rounding",
        "index_procs",
        "read_procs",
        "write_procs",
        "property_specs",
        "relationships",
    ),
    _NO_ANNOTATIONS,
)
builder.register_unsupported(
    "build_property_spec",
    ("id", "type", "description", "enum_values", "enum_labels"),
    _NO_ANNOTATIONS,
)
builder.register_unsupported("build_relationship", ("id", "key"), _NO_ANNOTATIONS)
builder.register_unsupported(
    "build_volumetric_tabular_layer",
    (
        "path",
        "resolution",
        "chunk_size",
        "bbox",
        "voxel_offset",
        "dataset_size",
        "encoding",
        "column_schema",
        "mode",
        "delete_empty_uploads",
        "info_overwrite",
    ),
    _NO_CONTACTS,
)
builder.register_unsupported("build_contact_layer", ("path", "readonly"), _NO_CONTACTS)
builder.register_unsupported(
    "build_seg_contact_layer", ("path", "readonly", "info_spec", "mode"), _NO_CONTACTS
)
builder.register_unsupported(
    "build_seg_contact_info_spec",
    ("info_path", "reference_path", "resolution", "chunk_size", "max_contact_span", "bbox"),
    _NO_CONTACTS,
)

# the seg_contact layer's point-cloud processors
for _name, _params in (
    (
        "resample_pointclouds",
        (
            "contacts",
            "segment_target",
            "segment_weighting",
            "contact_face_target",
            "contact_face_weighting",
        ),
    ),
    (
        "resample_combined_pointcloud",
        (
            "contacts",
            "total_target",
            "include_contact_faces",
            "max_contact_face_fraction",
            "weighting",
            "joint_segment_sampling",
        ),
    ),
    ("deduplicate_pointclouds", ("contacts", "apply_to_contact_faces")),
    (
        "normalize_pointclouds",
        (
            "contacts",
            "normalization_radius_nm",
            "center_on_random_contact_point",
            "use_pointcloud_radius",
            "apply_to_contact_faces",
        ),
    ),
    ("add_gaussian_noise", ("contacts_or_std", "std", "apply_to_contact_faces")),
    ("apply_random_rotation", ("contacts", "apply_to_contact_faces")),
    ("apply_random_flip", ("contacts", "apply_to_contact_faces")),
    ("randomize_segment_identity", ("contacts",)),
):
    builder.register_unsupported(_name, _params, _NO_CONTACTS)
