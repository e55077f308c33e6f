"""mazepa types of the original's that this project replaces, registered so that a spec naming
one is told what to use instead."""

from __future__ import annotations

from zetta_utils import builder

_WORKER = (
    "workers are started with `zetta worker` (see `zetta worker --help`), "
    "or by mazepa.execute_on_gcp_with_sqs"
)
_QUEUES = (
    "task and outcome queues are created, routed and deleted by mazepa.execute_on_gcp_with_sqs; "
    "local runs need none (mazepa.execute_locally, or mazepa.execute with num_procs)"
)

builder.register_unsupported(
    "mazepa.run_worker", ("task_queue", "outcome_queue", "sleep_sec", "exec_queue"), _WORKER
)
builder.register_unsupported(
    "mazepa.run_worker_manager",
    ("task_queue", "outcome_queue", "sleep_sec", "num_procs", "semaphores_spec", "idle_timeout"),
    _WORKER,
)
builder.register_unsupported("mazepa.TaskRouter", ("queues",), _QUEUES)
builder.register_unsupported("mazepa.AutoexecuteTaskQueue", ("debug",), _QUEUES)
builder.register_unsupported("mazepa.SQSExecutionQueue", ("name", "outcome_queue_name"), _QUEUES)
builder.register_unsupported("mazepa.ExecutionMultiQueue", ("queues",), _QUEUES)
builder.register_unsupported(
    "mazepa.SubflowTask",
    ("flow",),
    "a task may run a flow itself with mazepa.execute "
    "(a nested run, in the worker that runs the task)",
)
