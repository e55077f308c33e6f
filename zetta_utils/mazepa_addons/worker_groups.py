"""Worker groups of a remote run (``execute_on_gcp_with_sqs(worker_groups=...)``).

A run may have several groups of workers, e.g. CPU workers for reductions and GPU workers for
inference. Each group has its own work queue and its own Kubernetes Deployment (replicas,
resources, labels, node placement); all groups share the run's outcome queue and key. A task
goes to the group named by its ``worker_type`` (flows set it from ``op_worker_type`` /
``reduction_worker_type``); a task without one goes to the first group. As in the original,
``_`` and ``-`` are the same in group names and worker types (``mem_agg`` is served by group
``mem-agg``), since Kubernetes names cannot hold ``_``. A group's ``num_procs`` workers per pod
share its ``semaphores_spec`` limits (:mod:`.pod_workers`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from zetta_utils.mazepa.semaphores import SEMAPHORE_TYPES
from zetta_utils.mazepa.tasks import Task
from zetta_utils.message_queues.base import MessageQueue

__all__ = [
    "GROUP_KEYS",
    "NO_EFFECT_GROUP_KEYS",
    "WorkerGroup",
    "check_semaphores_spec",
    "group_key",
    "parse_worker_groups",
    "worker_type_router",
]

logger = logging.getLogger(__name__)

_GROUP_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")

NO_EFFECT_GROUP_KEYS = ("sqs_based_scaling", "idle_worker_timeout", "nudge_node_pools")
"""Keys of the original's worker groups that tuned its autoscaler; here a group is a Deployment of
a fixed number of ``replicas``, so they are checked and ignored."""

GROUP_KEYS = (
    "replicas",
    "resource_limits",
    "resource_requests",
    "num_procs",
    "labels",
    "provisioning_model",
    "gpu_accelerator_type",
    "required_zones",
    "preferred_zones",
    "termination_grace_seconds",
    "semaphores_spec",
    *NO_EFFECT_GROUP_KEYS,
)


def group_key(name: str) -> str:
    """The name a group or worker type is matched by (``_`` read as ``-``)."""
    return name.replace("_", "-")


@attrs.frozen
class WorkerGroup:
    name: str
    """As given in ``worker_groups``."""
    key: str
    """``name`` with ``_`` as ``-``: in queue and Deployment names, and for routing."""
    replicas: int
    resource_limits: Mapping[str, Any] | None = None
    resource_requests: Mapping[str, Any] | None = None
    labels: Mapping[str, Any] = attrs.field(factory=dict)
    provisioning_model: str | None = None
    gpu_accelerator_type: str | None = None
    required_zones: tuple[str, ...] = ()
    preferred_zones: tuple[str, ...] = ()
    termination_grace_seconds: int | None = None
    num_procs: int = 1
    """Worker processes per pod (sharing ``semaphores_spec``; see :mod:`.pod_workers`)."""
    semaphores_spec: Mapping[str, int] | None = None


def check_semaphores_spec(spec: Any, what: str = "semaphores_spec") -> dict[str, int] | None:
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise TypeError(
            f"`{what}` must map semaphore types to counts, e.g. {{'cuda': 1}}, got {spec!r}"
        )
    for key, value in spec.items():
        if key not in SEMAPHORE_TYPES:
            raise ValueError(
                f"`{what}`: unknown semaphore type {key!r}; the types are "
                f"{', '.join(SEMAPHORE_TYPES)}"
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{what}[{key!r}]` must be a positive integer, got {value!r}")
    return dict(spec)


def _positive_int(what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{what}` must be a positive integer, got {value!r}")
    return value


def _parse_group(name: Any, options: Any) -> WorkerGroup:
    """One group of ``worker_groups``, checked key by key; the autoscaler's keys are logged as
    having no effect."""
    where = f"worker_groups[{name!r}]"
    _check_group_name(name)
    _check_group_keys(where, options)
    replicas = _positive_int(f"{where}.replicas", options["replicas"])
    num_procs = _positive_int(f"{where}.num_procs", options.get("num_procs", 1))
    semaphores = check_semaphores_spec(options.get("semaphores_spec"), f"{where}.semaphores_spec")
    _check_no_effect_keys(where, options)
    _check_mappings(where, options)
    required_zones = _zones(f"{where}.required_zones", options.get("required_zones"))
    preferred_zones = _zones(f"{where}.preferred_zones", options.get("preferred_zones"))
    grace = _termination_grace(f"{where}.termination_grace_seconds", options)
    _log_no_effect_keys(name, options)
    return WorkerGroup(
        name=name,
        key=group_key(name),
        replicas=replicas,
        resource_limits=options.get("resource_limits"),
        resource_requests=options.get("resource_requests"),
        labels=dict(options.get("labels") or {}),
        provisioning_model=options.get("provisioning_model"),
        gpu_accelerator_type=options.get("gpu_accelerator_type"),
        required_zones=required_zones,
        preferred_zones=preferred_zones,
        termination_grace_seconds=grace,
        num_procs=num_procs,
        semaphores_spec=semaphores,
    )


def _check_group_name(name: Any) -> None:
    """A group's name names its queue and Deployment: Kubernetes' characters (``_`` as ``-``)."""
    if (
        not isinstance(name, str)
        or not name
        or not set(group_key(name)) <= _GROUP_NAME_CHARS
        or group_key(name)[0] == "-"
        or group_key(name)[-1] == "-"
    ):
        raise ValueError(
            f"`worker_groups`: group name {name!r} must be lowercase letters, digits, '-' and '_' "
            "(it names the group's queue and Kubernetes Deployment), starting and ending with a "
            "letter or digit"
        )


def _check_group_keys(where: str, options: Any) -> None:
    """The options are a mapping of known keys that has ``replicas``."""
    if not isinstance(options, Mapping):
        raise TypeError(
            f"`{where}` must be a mapping such as {{replicas: 10, resource_limits: {{memory: "
            f"'16Gi'}}}}, got {options!r}"
        )
    unknown = sorted(str(k) for k in options if k not in GROUP_KEYS)
    if unknown:
        raise ValueError(
            f"`{where}`: unknown key(s) {', '.join(unknown)}; a group takes {', '.join(GROUP_KEYS)}"
        )
    if "replicas" not in options:
        raise ValueError(f"`{where}.replicas` is required (the group's number of workers)")


def _check_no_effect_keys(where: str, options: Mapping[str, Any]) -> None:
    """The autoscaler's keys, ignored here, still have the original's types."""
    for flag in ("sqs_based_scaling", "nudge_node_pools"):
        if flag in options and not isinstance(options[flag], bool):
            raise TypeError(f"`{where}.{flag}` must be true or false, got {options[flag]!r}")
    if "idle_worker_timeout" in options:
        value = options["idle_worker_timeout"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(
                f"`{where}.idle_worker_timeout` must be a number of seconds, got {value!r}"
            )


def _check_mappings(where: str, options: Mapping[str, Any]) -> None:
    for mapping in ("resource_limits", "resource_requests", "labels"):
        if options.get(mapping) is not None and not isinstance(options[mapping], Mapping):
            raise TypeError(f"`{where}.{mapping}` must be a mapping, got {options[mapping]!r}")


def _zones(what: str, value: Any) -> tuple[str, ...]:
    """A list of zone names (none: no placement)."""
    if value is not None and (
        isinstance(value, str)
        or not isinstance(value, (list, tuple))
        or not all(isinstance(v, str) and v for v in value)
    ):
        raise TypeError(
            f"`{what}` must be a list of zone names such as ['us-east1-b'], got {value!r}"
        )
    return tuple(value or ())


def _termination_grace(what: str, options: Mapping[str, Any]) -> int | None:
    grace = options.get("termination_grace_seconds")
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int) or grace < 0):
        raise ValueError(f"`{what}` must be a non-negative integer, got {grace!r}")
    return grace


def _log_no_effect_keys(name: str, options: Mapping[str, Any]) -> None:
    ignored = sorted(k for k in NO_EFFECT_GROUP_KEYS if k in options)
    if ignored:
        logger.info(
            "worker group %s: %s have no effect here (a group is a fixed Deployment of "
            "single-process workers)",
            name,
            ", ".join(ignored),
        )


def parse_worker_groups(groups: Any) -> list[WorkerGroup]:
    """``worker_groups`` (group name -> options, as the original takes them) as checked groups,
    in the order given; a ``ValueError``/``TypeError`` names the offending group and key."""
    if not isinstance(groups, Mapping) or not groups:
        raise TypeError(
            "`worker_groups` must map group names to their options, e.g. {cpu: {replicas: 10, "
            f"resource_limits: {{memory: '16Gi'}}}}, got {groups!r}"
        )
    parsed = [_parse_group(name, options) for name, options in groups.items()]
    seen: dict[str, str] = {}
    for g in parsed:
        if g.key in seen:
            raise ValueError(
                f"`worker_groups`: {seen[g.key]!r} and {g.name!r} name the same group ('_' and '-' "
                "are the same in group names)"
            )
        seen[g.key] = g.name
    return parsed


def worker_type_router(queues: Mapping[str, MessageQueue]) -> Callable[[Task[Any]], MessageQueue]:
    """The work queue of each task: the queue of the group its ``worker_type`` names (``queues``
    is keyed by :func:`group_key`, in the groups' order), the first group's for a task without
    one. A worker type no group serves is a ``ValueError`` naming it and the groups."""
    if not queues:
        raise ValueError("a router needs at least one queue")
    first = next(iter(queues.values()))

    def route(task: Task[Any]) -> MessageQueue:
        if task.worker_type is None:
            return first
        queue = queues.get(group_key(task.worker_type))
        if queue is None:
            raise ValueError(
                f"task {task.id} ({task.operation_name}) has worker_type {task.worker_type!r}, "
                f"which no worker group serves (the groups are {', '.join(map(repr, queues))}): "
                f"add a group named {task.worker_type!r} to `worker_groups`, or change the flow's "
                "`op_worker_type` / `reduction_worker_type`"
            )
        return queue

    return route
