"""``parse_worker_groups``: each key of a group checked in turn, the first bad one named in the
error, the autoscaler's keys logged as having no effect (no queues or cluster needed)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from zetta_utils.mazepa_addons.worker_groups import WorkerGroup, parse_worker_groups

W = "`worker_groups['a']"


@pytest.mark.parametrize(
    "options, error, message",
    [
        (3, TypeError, f"{W}` must be a mapping such as {{replicas: 10, resource_limits: "),
        ({"replicas": 1, "zz": 1, "yy": 2}, ValueError, f"{W}`: unknown key(s) yy, zz; a group "),
        ({"num_procs": 2}, ValueError, f"{W}.replicas` is required (the group's number of "),
        ({"replicas": True}, ValueError, f"{W}.replicas` must be a positive integer, got True"),
        (
            {"replicas": 0, "num_procs": 0, "labels": 3},
            ValueError,
            f"{W}.replicas` must be a positive integer, got 0",
        ),
        (
            {"replicas": 1, "num_procs": 0, "semaphores_spec": 3},
            ValueError,
            f"{W}.num_procs` must be a positive integer, got 0",
        ),
        (
            {"replicas": 1, "semaphores_spec": {"gpu": 1}, "sqs_based_scaling": 1},
            ValueError,
            f"{W}.semaphores_spec`: unknown semaphore type 'gpu'; the types are ",
        ),
        (
            {"replicas": 1, "nudge_node_pools": "x", "idle_worker_timeout": -1},
            TypeError,
            f"{W}.nudge_node_pools` must be true or false, got 'x'",
        ),
        (
            {"replicas": 1, "idle_worker_timeout": True, "resource_limits": 3},
            ValueError,
            f"{W}.idle_worker_timeout` must be a number of seconds, got True",
        ),
        (
            {"replicas": 1, "resource_requests": [1], "required_zones": "x"},
            TypeError,
            f"{W}.resource_requests` must be a mapping, got [1]",
        ),
        (
            {"replicas": 1, "required_zones": "us", "preferred_zones": 3},
            TypeError,
            f"{W}.required_zones` must be a list of zone names such as ['us-east1-b'], got 'us'",
        ),
        (
            {"replicas": 1, "preferred_zones": [""], "termination_grace_seconds": -1},
            TypeError,
            f"{W}.preferred_zones` must be a list of zone names such as ['us-east1-b'], got ['']",
        ),
        (
            {"replicas": 1, "termination_grace_seconds": False},
            ValueError,
            f"{W}.termination_grace_seconds` must be a non-negative integer, got False",
        ),
    ],
)
def test_the_first_bad_key_is_named(options: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        parse_worker_groups({"a": options})
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("name", ["", "A", "-a", "a_", "a b", 1])
def test_a_group_name_must_name_a_kubernetes_object(name: Any) -> None:
    with pytest.raises(ValueError) as info:
        parse_worker_groups({name: 3})  # the name is checked before the options
    assert str(info.value) == (
        f"`worker_groups`: group name {name!r} must be lowercase letters, digits, '-' and '_' "
        "(it names the group's queue and Kubernetes Deployment), starting and ending with a "
        "letter or digit"
    )


def test_a_group_with_every_key(caplog: pytest.LogCaptureFixture) -> None:
    options = {
        "replicas": 2,
        "num_procs": 3,
        "semaphores_spec": {"cuda": 1},
        "labels": {"x": "y"},
        "resource_limits": {"memory": "1Gi"},
        "resource_requests": {"cpu": 1},
        "provisioning_model": "spot",
        "gpu_accelerator_type": "nvidia-t4",
        "required_zones": ["z1"],
        "preferred_zones": ("z2", "z3"),
        "termination_grace_seconds": 0,
        "sqs_based_scaling": True,
        "idle_worker_timeout": 3.5,
        "nudge_node_pools": False,
    }
    with caplog.at_level(logging.INFO, logger="zetta_utils.mazepa_addons.worker_groups"):
        groups = parse_worker_groups({"b_c": options, "a": {"replicas": 1}})
    assert groups == [
        WorkerGroup(
            name="b_c",
            key="b-c",
            replicas=2,
            resource_limits={"memory": "1Gi"},
            resource_requests={"cpu": 1},
            labels={"x": "y"},
            provisioning_model="spot",
            gpu_accelerator_type="nvidia-t4",
            required_zones=("z1",),
            preferred_zones=("z2", "z3"),
            termination_grace_seconds=0,
            num_procs=3,
            semaphores_spec={"cuda": 1},
        ),
        WorkerGroup(name="a", key="a", replicas=1),
    ]
    assert [r.getMessage() for r in caplog.records] == [
        "worker group b_c: idle_worker_timeout, nudge_node_pools, sqs_based_scaling have no "
        "effect here (a group is a fixed Deployment of single-process workers)"
    ]
