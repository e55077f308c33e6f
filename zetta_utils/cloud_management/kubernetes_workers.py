"""Worker Deployments on Kubernetes, through the official ``kubernetes`` Python client.

A run's workers are one Deployment (image, replicas, resources, env naming the run and its queues)
plus one Secret holding the run's message key (and, when given, the credentials the workers need
for the queues). The container's env reads the key from the Secret, so it never appears in the
Deployment itself.

Cluster access: ``config.load_kube_config(context=...)``. For GKE, the context is the one
``gcloud container clusters get-credentials CLUSTER --region REGION --project PROJECT`` writes to
``~/.kube/config``, named ``gke_PROJECT_REGION_CLUSTER`` (:func:`gke_context_name`); run that
command once on the producer machine (gcloud is not used by this module). Any other context name
can be given instead.

A run with several worker groups has one Deployment per group (each with its own image
resources, replicas, labels and node placement) and one Secret shared by all of them.

Node placement follows GKE's conventions: ``provisioning_model`` ``"spot"`` selects Spot VMs
(node label ``cloud.google.com/gke-spot``, whose taint it tolerates) and ``"standard"`` keeps
off them; ``gpu_accelerator_type`` selects nodes by ``cloud.google.com/gke-accelerator``;
``required_zones`` / ``preferred_zones`` are node affinities on ``topology.kubernetes.io/zone``.

With a ``dry_run_manifest_dir`` the objects are written there as YAML and no API is called.
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

__all__ = [
    "WorkerDeploymentSpec",
    "build_worker_deployment",
    "build_worker_secret",
    "check_labels",
    "create_worker_deployment",
    "create_worker_deployments",
    "delete_worker_deployment",
    "gke_context_name",
    "manifest_dicts",
    "write_group_manifests",
    "write_manifests",
]

logger = logging.getLogger(__name__)

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
REDACTED = "<redacted>"
GPU_RESOURCE = "nvidia.com/gpu"
SPOT_LABEL = "cloud.google.com/gke-spot"
ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
ZONE_LABEL = "topology.kubernetes.io/zone"
PROVISIONING_MODELS = ("spot", "standard")


def gke_context_name(project: str, region: str, cluster: str) -> str:
    """The kubeconfig context ``gcloud container clusters get-credentials`` creates for a
    cluster."""
    return f"gke_{project}_{region}_{cluster}"


def _check_name(what: str, value: str) -> str:
    if not isinstance(value, str) or len(value) > 63 or not _DNS1123.match(value):
        raise ValueError(
            f"`{what}` must be a Kubernetes name (lowercase letters, digits and '-', at most 63 "
            f"characters), got {value!r}"
        )
    return value


def _check_resources(
    resources: Mapping[str, Any], what: str = "worker_resources"
) -> dict[str, str]:
    if not isinstance(resources, Mapping):
        raise TypeError(
            f"`{what}` must be a mapping such as {{'memory': '18560Mi'}}, got {resources!r}"
        )
    out: dict[str, str] = {}
    for key, value in resources.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"`{what}` keys must be resource names, got {key!r}")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or str(value) == "":
            raise ValueError(
                f"`{what}[{key!r}]` must be a quantity such as '4' or '16Gi', got {value!r}"
            )
        out[key] = str(value)
    return out


_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def check_labels(labels: Mapping[str, Any], what: str = "worker_labels") -> dict[str, str]:
    """``labels`` as Kubernetes label strings, or a ``ValueError`` naming the bad one."""
    if not isinstance(labels, Mapping):
        raise TypeError(f"`{what}` must map label names to values, got {labels!r}")
    out: dict[str, str] = {}
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/") if isinstance(key, str) else ("", "", "")
        if (
            not isinstance(key, str)
            or not _LABEL_NAME.match(name)
            or (prefix and not re.match(r"^[a-z0-9.-]{1,253}$", prefix))
        ):
            raise ValueError(
                f"`{what}`: {key!r} is not a Kubernetes label name ([prefix/]name, name of at most "
                "63 letters, digits, '-', '_', '.')"
            )
        if (
            isinstance(value, bool)
            or not isinstance(value, (str, int, float))
            or not _LABEL_VALUE.match(str(value))
        ):
            raise ValueError(
                f"`{what}[{key!r}]` must be a label value (at most 63 letters, digits, '-', '_', "
                f"'.'), got {value!r}"
            )
        out[key] = str(value)
    return out


def _check_zones(zones: Any, what: str) -> tuple[str, ...]:
    if zones is None:
        return ()
    if (
        isinstance(zones, str)
        or not isinstance(zones, (list, tuple))
        or not all(isinstance(z, str) and z for z in zones)
    ):
        raise TypeError(
            f"`{what}` must be a list of zone names such as ['us-east1-b'], got {zones!r}"
        )
    return tuple(zones)


@attrs.frozen
class WorkerDeploymentSpec:
    """Everything that decides a run's worker Deployment and Secret."""

    name: str
    image: str
    replicas: int
    command: tuple[str, ...]
    env: Mapping[str, str] = attrs.field(factory=dict)
    """Plain environment variables of the workers."""
    secret_env: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    """Environment variables whose values live in the Secret (the run key, credentials)."""
    resources: Mapping[str, str] = attrs.field(factory=dict)
    namespace: str = "default"
    labels: Mapping[str, str] = attrs.field(factory=dict)
    secret_name: str | None = None
    termination_grace_s: int = 30
    resource_requests: Mapping[str, str] | None = None
    """Requests, where they differ from ``resources`` (the limits); None: requests = limits."""
    provisioning_model: str | None = None
    """``"spot"``, ``"standard"``, or None (any node)."""
    gpu_accelerator_type: str | None = None
    required_zones: tuple[str, ...] = ()
    preferred_zones: tuple[str, ...] = ()

    def __attrs_post_init__(self) -> None:
        _check_name("deployment name", self.name)
        _check_name("namespace", self.namespace)
        if self.secret_name is not None:
            _check_name("secret name", self.secret_name)
        if not isinstance(self.image, str) or not self.image:
            raise ValueError(
                f"`worker_image` must be a container image reference, got {self.image!r}"
            )
        if (
            isinstance(self.replicas, bool)
            or not isinstance(self.replicas, int)
            or self.replicas < 0
        ):
            raise ValueError(
                f"`worker_replicas` must be a non-negative integer, got {self.replicas!r}"
            )
        object.__setattr__(self, "resources", _check_resources(self.resources))
        if self.resource_requests is not None:
            object.__setattr__(
                self,
                "resource_requests",
                _check_resources(self.resource_requests, "resource_requests"),
            )
        object.__setattr__(self, "labels", check_labels(self.labels, "labels"))
        if (
            self.provisioning_model is not None
            and self.provisioning_model not in PROVISIONING_MODELS
        ):
            raise ValueError(
                f"`provisioning_model` must be one of {', '.join(map(repr, PROVISIONING_MODELS))} "
                f"(or unset: any node), got {self.provisioning_model!r}"
            )
        if self.gpu_accelerator_type is not None and (
            not isinstance(self.gpu_accelerator_type, str)
            or not _DNS1123.match(self.gpu_accelerator_type)
        ):
            raise ValueError(
                "`gpu_accelerator_type` must be a GKE accelerator name such as 'nvidia-l4', got "
                f"{self.gpu_accelerator_type!r}"
            )
        object.__setattr__(
            self, "required_zones", _check_zones(self.required_zones, "required_zones")
        )
        object.__setattr__(
            self, "preferred_zones", _check_zones(self.preferred_zones, "preferred_zones")
        )
        if (
            isinstance(self.termination_grace_s, bool)
            or not isinstance(self.termination_grace_s, int)
            or self.termination_grace_s < 0
        ):
            raise ValueError(
                "`termination_grace_seconds` must be a non-negative integer, got "
                f"{self.termination_grace_s!r}"
            )
        if self.secret_env and self.secret_name is None:
            raise ValueError("`secret_env` needs a `secret_name`")

    @property
    def effective_secret_name(self) -> str:
        return self.secret_name or f"{self.name}-secret"


def build_worker_secret(spec: WorkerDeploymentSpec, redact: bool = False) -> Any:
    """The ``V1Secret`` holding ``spec.secret_env`` (values replaced by a marker if ``redact``)."""
    from kubernetes import client

    data = {
        key: base64.b64encode((REDACTED if redact else value).encode()).decode()
        for key, value in sorted(spec.secret_env.items())
    }
    return client.V1Secret(
        api_version="v1",
        kind="Secret",
        metadata=client.V1ObjectMeta(
            name=spec.effective_secret_name, namespace=spec.namespace, labels=dict(spec.labels)
        ),
        type="Opaque",
        data=data,
    )


def build_worker_deployment(spec: WorkerDeploymentSpec) -> Any:
    """The ``V1Deployment`` of the workers."""
    from kubernetes import client

    env = [client.V1EnvVar(name=k, value=v) for k, v in sorted(spec.env.items())]
    env += [
        client.V1EnvVar(
            name=k,
            value_from=client.V1EnvVarSource(
                secret_key_ref=client.V1SecretKeySelector(name=spec.effective_secret_name, key=k)
            ),
        )
        for k in sorted(spec.secret_env)
    ]
    limits = dict(spec.resources)
    requests = dict(spec.resource_requests) if spec.resource_requests is not None else limits
    tolerations = []
    if GPU_RESOURCE in limits or GPU_RESOURCE in requests:
        # GKE taints GPU nodes so that only pods asking for GPUs land there.
        tolerations.append(
            client.V1Toleration(key=GPU_RESOURCE, operator="Exists", effect="NoSchedule")
        )
    node_selector: dict[str, str] = {}
    if spec.provisioning_model == "spot":
        node_selector[SPOT_LABEL] = "true"
        tolerations.append(
            client.V1Toleration(key=SPOT_LABEL, operator="Equal", value="true", effect="NoSchedule")
        )
    if spec.gpu_accelerator_type is not None:
        node_selector[ACCELERATOR_LABEL] = spec.gpu_accelerator_type
    labels = {**spec.labels, "app": spec.name}
    container = client.V1Container(
        name="worker",
        image=spec.image,
        image_pull_policy="IfNotPresent",
        command=list(spec.command),
        env=env or None,
        resources=client.V1ResourceRequirements(requests=requests or None, limits=limits or None),
    )
    pod = client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels=labels),
        spec=client.V1PodSpec(
            containers=[container],
            restart_policy="Always",
            termination_grace_period_seconds=spec.termination_grace_s,
            tolerations=tolerations or None,
            node_selector=node_selector or None,
            affinity=_node_affinity(spec),
        ),
    )
    return client.V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=client.V1ObjectMeta(name=spec.name, namespace=spec.namespace, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=spec.replicas,
            selector=client.V1LabelSelector(match_labels={"app": spec.name}),
            template=pod,
        ),
    )


def _node_affinity(spec: WorkerDeploymentSpec) -> Any:
    from kubernetes import client

    required = []
    if spec.provisioning_model == "standard":
        required.append(client.V1NodeSelectorRequirement(key=SPOT_LABEL, operator="DoesNotExist"))
    if spec.required_zones:
        required.append(
            client.V1NodeSelectorRequirement(
                key=ZONE_LABEL, operator="In", values=list(spec.required_zones)
            )
        )
    preferred = []
    if spec.preferred_zones:
        preferred.append(
            client.V1PreferredSchedulingTerm(
                weight=100,
                preference=client.V1NodeSelectorTerm(
                    match_expressions=[
                        client.V1NodeSelectorRequirement(
                            key=ZONE_LABEL, operator="In", values=list(spec.preferred_zones)
                        )
                    ]
                ),
            )
        )
    if not required and not preferred:
        return None
    return client.V1Affinity(
        node_affinity=client.V1NodeAffinity(
            required_during_scheduling_ignored_during_execution=client.V1NodeSelector(
                node_selector_terms=[client.V1NodeSelectorTerm(match_expressions=required)]
            )
            if required
            else None,
            preferred_during_scheduling_ignored_during_execution=preferred or None,
        )
    )


def manifest_dicts(spec: WorkerDeploymentSpec, redact_secrets: bool = True) -> list[dict[str, Any]]:
    """The Secret (if any) and the Deployment as plain manifests (what ``kubectl apply`` takes)."""
    from kubernetes import client

    api = client.ApiClient()
    objects = []
    if spec.secret_env:
        objects.append(build_worker_secret(spec, redact=redact_secrets))
    objects.append(build_worker_deployment(spec))
    return [api.sanitize_for_serialization(o) for o in objects]


def write_manifests(spec: WorkerDeploymentSpec, directory: str | os.PathLike[str]) -> Path:
    """Write the manifests to ``directory/<name>.yaml`` (secret values redacted); returns the
    path."""
    import yaml

    folder = Path(directory).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{spec.name}.yaml"
    path.write_text(yaml.safe_dump_all(manifest_dicts(spec, redact_secrets=True), sort_keys=False))
    return path


def write_group_manifests(
    specs: list[WorkerDeploymentSpec], directory: str | os.PathLike[str]
) -> list[Path]:
    """Several worker groups sharing one Secret: the Secret (values redacted) in
    ``directory/<secret name>.yaml`` and each group's Deployment in ``directory/<name>.yaml``."""
    import yaml
    from kubernetes import client

    folder = Path(directory).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    api = client.ApiClient()
    paths = []
    if specs and specs[0].secret_env:
        path = folder / f"{specs[0].effective_secret_name}.yaml"
        path.write_text(
            yaml.safe_dump(
                api.sanitize_for_serialization(build_worker_secret(specs[0], redact=True)),
                sort_keys=False,
            )
        )
        paths.append(path)
    for spec in specs:
        path = folder / f"{spec.name}.yaml"
        path.write_text(
            yaml.safe_dump(
                api.sanitize_for_serialization(build_worker_deployment(spec)), sort_keys=False
            )
        )
        paths.append(path)
    return paths


def _load_config(kube_context: str | None, kube_config_path: str | None) -> Any:
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        config.load_kube_config(
            config_file=kube_config_path, context=kube_context, client_configuration=configuration
        )
    except Exception as e:
        raise RuntimeError(
            f"cannot use Kubernetes context {kube_context or '(current)'}: {e}. For GKE, run "
            "`gcloud container clusters get-credentials CLUSTER --region REGION --project PROJECT` "
            "on this machine first."
        ) from e
    return client.ApiClient(configuration)


def create_worker_deployment(
    spec: WorkerDeploymentSpec, kube_context: str | None = None, kube_config_path: str | None = None
) -> None:
    """Create the Secret and the Deployment in the cluster of ``kube_context``."""
    from kubernetes import client

    api = _load_config(kube_context, kube_config_path)
    if spec.secret_env:
        client.CoreV1Api(api).create_namespaced_secret(spec.namespace, build_worker_secret(spec))
    client.AppsV1Api(api).create_namespaced_deployment(
        spec.namespace, build_worker_deployment(spec)
    )
    logger.info(
        "created deployment %s/%s (%d replicas of %s)",
        spec.namespace,
        spec.name,
        spec.replicas,
        spec.image,
    )


def create_worker_deployments(
    specs: list[WorkerDeploymentSpec],
    kube_context: str | None = None,
    kube_config_path: str | None = None,
    created: list[str] | None = None,
) -> None:
    """Create the Secret of ``specs[0]`` (shared by all) and every Deployment; the names of the
    Secret and the Deployments are appended to ``created`` as they are created (so that a failure
    midway can be cleaned up)."""
    from kubernetes import client

    api = _load_config(kube_context, kube_config_path)
    if specs and specs[0].secret_env:
        client.CoreV1Api(api).create_namespaced_secret(
            specs[0].namespace, build_worker_secret(specs[0])
        )
        if created is not None:
            created.append(specs[0].effective_secret_name)
    for spec in specs:
        client.AppsV1Api(api).create_namespaced_deployment(
            spec.namespace, build_worker_deployment(spec)
        )
        if created is not None:
            created.append(spec.name)
        logger.info(
            "created deployment %s/%s (%d replicas of %s)",
            spec.namespace,
            spec.name,
            spec.replicas,
            spec.image,
        )


def delete_worker_deployment(
    name: str,
    namespace: str = "default",
    secret_name: str | None = None,
    kube_context: str | None = None,
    kube_config_path: str | None = None,
) -> bool:
    """Delete a Deployment (and its Secret); False if neither existed."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = _load_config(kube_context, kube_config_path)
    found = False
    try:
        client.AppsV1Api(api).delete_namespaced_deployment(
            name, namespace, body=client.V1DeleteOptions(propagation_policy="Background")
        )
        found = True
    except ApiException as e:
        if e.status != 404:
            raise
    if secret_name:
        try:
            client.CoreV1Api(api).delete_namespaced_secret(secret_name, namespace)
            found = True
        except ApiException as e:
            if e.status != 404:
                raise
    return found
