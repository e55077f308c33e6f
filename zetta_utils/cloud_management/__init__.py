"""Cloud resources of remote runs: worker Deployments on Kubernetes, run records, and garbage
collection of runs that died without cleaning up (``zetta gc``)."""

from .blob_store import BlobStore, open_blob_store
from .gc import GcReport, collect_garbage, delete_run_resources
from .kubernetes_workers import (
    WorkerDeploymentSpec,
    build_worker_deployment,
    build_worker_secret,
    check_labels,
    create_worker_deployment,
    create_worker_deployments,
    delete_worker_deployment,
    gke_context_name,
    manifest_dicts,
    write_group_manifests,
    write_manifests,
)
from .run_records import DeploymentRef, QueueRef, RunHeartbeat, RunRecord, RunRecordStore

__all__ = [
    "BlobStore",
    "DeploymentRef",
    "GcReport",
    "QueueRef",
    "RunHeartbeat",
    "RunRecord",
    "RunRecordStore",
    "WorkerDeploymentSpec",
    "build_worker_deployment",
    "build_worker_secret",
    "check_labels",
    "collect_garbage",
    "create_worker_deployment",
    "create_worker_deployments",
    "delete_run_resources",
    "delete_worker_deployment",
    "gke_context_name",
    "manifest_dicts",
    "open_blob_store",
    "write_group_manifests",
    "write_manifests",
]
