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
    "create_worker_deployment",
    "delete_worker_deployment",
    "gke_context_name",
    "manifest_dicts",
    "write_manifests",
]

logger = logging.getLogger(__name__)

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
REDACTED = "<redacted>"
GPU_RESOURCE = "nvidia.com/gpu"


def gke_context_name(project: str, region: str, cluster: str) -> str:
    """The kubeconfig context ``gcloud container clusters get-credentials`` creates for a cluster."""
    return f"gke_{project}_{region}_{cluster}"


def _check_name(what: str, value: str) -> str:
    if not isinstance(value, str) or len(value) > 63 or not _DNS1123.match(value):
        raise ValueError(
            f"`{what}` must be a Kubernetes name (lowercase letters, digits and '-', at most 63 characters), got {value!r}"
        )
    return value


def _check_resources(resources: Mapping[str, Any]) -> dict[str, str]:
    if not isinstance(resources, Mapping):
        raise TypeError(f"`worker_resources` must be a mapping such as {{'memory': '18560Mi'}}, got {resources!r}")
    out: dict[str, str] = {}
    for key, value in resources.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"`worker_resources` keys must be resource names, got {key!r}")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or str(value) == "":
            raise ValueError(f"`worker_resources[{key!r}]` must be a quantity such as '4' or '16Gi', got {value!r}")
        out[key] = str(value)
    return out


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

    def __attrs_post_init__(self) -> None:
        _check_name("deployment name", self.name)
        _check_name("namespace", self.namespace)
        if self.secret_name is not None:
            _check_name("secret name", self.secret_name)
        if not isinstance(self.image, str) or not self.image:
            raise ValueError(f"`worker_image` must be a container image reference, got {self.image!r}")
        if isinstance(self.replicas, bool) or not isinstance(self.replicas, int) or self.replicas < 0:
            raise ValueError(f"`worker_replicas` must be a non-negative integer, got {self.replicas!r}")
        object.__setattr__(self, "resources", _check_resources(self.resources))
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
        metadata=client.V1ObjectMeta(name=spec.effective_secret_name, namespace=spec.namespace, labels=dict(spec.labels)),
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
    resources = dict(spec.resources)
    tolerations = None
    if GPU_RESOURCE in resources:
        # GKE taints GPU nodes so that only pods asking for GPUs land there.
        tolerations = [client.V1Toleration(key=GPU_RESOURCE, operator="Exists", effect="NoSchedule")]
    labels = {**spec.labels, "app": spec.name}
    container = client.V1Container(
        name="worker",
        image=spec.image,
        image_pull_policy="IfNotPresent",
        command=list(spec.command),
        env=env or None,
        resources=client.V1ResourceRequirements(requests=resources or None, limits=resources or None),
    )
    pod = client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels=labels),
        spec=client.V1PodSpec(
            containers=[container],
            restart_policy="Always",
            termination_grace_period_seconds=spec.termination_grace_s,
            tolerations=tolerations,
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
    """Write the manifests to ``directory/<name>.yaml`` (secret values redacted); returns the path."""
    import yaml

    folder = Path(directory).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{spec.name}.yaml"
    path.write_text(yaml.safe_dump_all(manifest_dicts(spec, redact_secrets=True), sort_keys=False))
    return path


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
    client.AppsV1Api(api).create_namespaced_deployment(spec.namespace, build_worker_deployment(spec))
    logger.info("created deployment %s/%s (%d replicas of %s)", spec.namespace, spec.name, spec.replicas, spec.image)


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

