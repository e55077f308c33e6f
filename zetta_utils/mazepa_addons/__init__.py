"""Remote execution for mazepa: tasks through message queues to workers.

- :func:`execute_on_gcp_with_sqs` (builder type ``mazepa.execute_on_gcp_with_sqs``): a whole run
  with SQS queues and workers on Kubernetes (or local processes with ``local_test``).
- :func:`execute_with_queues`: the queue-agnostic core (``mazepa.execute`` with a
  :class:`QueueExecutor`).
- :func:`run_worker`: the worker loop behind ``zetta worker``.
"""

from zetta_utils import mazepa as _mazepa

from .execution import (
    RemoteExecutionSummary,
    execute_on_gcp_with_sqs,
    execute_with_queues,
    queue_names,
)
from .local_workers import LocalWorkerPool
from .queue_executor import QueueExecutor, QueueExecutorStats, Rejection
from .run_ids import check_run_id, generate_run_id
from .worker import WorkerStats, run_worker
from .worker_groups import WorkerGroup, parse_worker_groups

# ``mazepa.execute_on_gcp_with_sqs`` (the guide's path) resolves to these: mazepa is below this
# package and never imports it.
_mazepa.provide_remote_entry_points(
    execute_on_gcp_with_sqs=execute_on_gcp_with_sqs, execute_with_queues=execute_with_queues
)

__all__ = [
    "LocalWorkerPool",
    "QueueExecutor",
    "QueueExecutorStats",
    "Rejection",
    "RemoteExecutionSummary",
    "WorkerGroup",
    "WorkerStats",
    "check_run_id",
    "execute_on_gcp_with_sqs",
    "execute_with_queues",
    "generate_run_id",
    "parse_worker_groups",
    "queue_names",
    "run_worker",
]
