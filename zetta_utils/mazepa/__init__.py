"""mazepa: tasks, flows and their execution, from one process to many.

It knows nothing about volumes: flows yield tasks, executors run them.

    from zetta_utils import mazepa

    @mazepa.taskable_operation
    def square(x: int) -> int:
        return x * x

    @mazepa.flow_schema
    def squares(n: int):
        tasks = [square.make_task(i) for i in range(n)]
        yield tasks
        yield mazepa.Dependency()
        print(sum(t.outcome.return_value for t in tasks))

    mazepa.execute(squares(10), num_procs=2)

Registered builder types: ``mazepa.execute``, ``mazepa.execute_locally``, ``mazepa.seq_flow``
(alias ``mazepa.sequential_flow``), ``mazepa.concurrent_flow``.
"""

from . import id_generation, serialization
from . import original_names as _original_names  # noqa: F401  (registers the original's replaced types)
from .checkpoint import CheckpointStore
from .exceptions import ExecutionError, FlowFailure, TaskFailure
from .execute import ExecutionSummary, execute, execution_defaults
from .executors import ExecutorBackend, SerialExecutor
from .flows import (
    Dependency,
    Flow,
    FlowFnReturnType,
    FlowSchema,
    FlowSchemaBase,
    concurrent_flow,
    flow_schema,
    flow_schema_cls,
    seq_flow,
)
from .local_execution import execute_locally
from .local_pool import LocalProcessExecutor
from .record_holds import hold_record, release_record, single_process
from .scheduler import Scheduler
from .semaphores import SEMAPHORE_TYPES, configure_semaphores, semaphore
from .serialization import deserialize_task, serialize_task
from .task_outcome import TaskOutcome
from .tasks import (
    OperationBase,
    Task,
    TaskableOperation,
    taskable_operation,
    taskable_operation_cls,
)
from .transient_errors import (
    TransientError,
    WorkerCrashedError,
    is_transient_error,
    register_transient_error,
)

__all__ = [
    "SEMAPHORE_TYPES",
    "CheckpointStore",
    "Dependency",
    "ExecutionError",
    "ExecutionSummary",
    "ExecutorBackend",
    "Flow",
    "FlowFailure",
    "FlowFnReturnType",
    "FlowSchema",
    "FlowSchemaBase",
    "LocalProcessExecutor",
    "OperationBase",
    "Scheduler",
    "SerialExecutor",
    "Task",
    "TaskFailure",
    "TaskOutcome",
    "TaskableOperation",
    "TransientError",
    "WorkerCrashedError",
    "concurrent_flow",
    "configure_semaphores",
    "deserialize_task",
    "execute",
    "execute_locally",
    "execution_defaults",
    "flow_schema",
    "flow_schema_cls",
    "hold_record",
    "id_generation",
    "is_transient_error",
    "register_transient_error",
    "release_record",
    "semaphore",
    "seq_flow",
    "serialization",
    "serialize_task",
    "single_process",
    "taskable_operation",
    "taskable_operation_cls",
]


# Remote execution lives in mazepa_addons (boto3, kubernetes), a layer above this one, which
# this package never imports: on import, mazepa_addons hands its entry points to
# ``provide_remote_entry_points`` (registration goes from the upper module down, as with the
# builder). The guide calls them ``mazepa.execute_on_gcp_with_sqs``: on first use they are
# loaded the way the builder loads unknown types, by ``zetta_utils.load_all_modules``.
_REMOTE_ENTRY_POINTS = ("execute_on_gcp_with_sqs", "execute_with_queues")
_PROVIDED: dict[str, object] = {}


def provide_remote_entry_points(**entry_points: object) -> None:
    """Called by ``zetta_utils.mazepa_addons`` on import: what ``mazepa.<name>`` resolves to."""
    unknown = set(entry_points) - set(_REMOTE_ENTRY_POINTS)
    if unknown:
        raise TypeError(f"provide_remote_entry_points: unknown name(s) {sorted(unknown)}")
    _PROVIDED.update(entry_points)


def __getattr__(name: str) -> object:
    if name in _REMOTE_ENTRY_POINTS:
        if name not in _PROVIDED:
            import zetta_utils

            zetta_utils.load_all_modules()
        if name in _PROVIDED:
            return _PROVIDED[name]
    raise AttributeError(f"module 'zetta_utils.mazepa' has no attribute {name!r}")
