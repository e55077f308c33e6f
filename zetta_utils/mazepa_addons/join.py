"""Join files: what a worker started anywhere needs to serve a run (``zetta worker --join FILE``).

``execute_on_gcp_with_sqs`` writes one per run once its queues exist, and deletes it when the run
ends: the run id, the queue names, the SQS region and endpoint, the worker options and the run's
message key. The key makes the file a secret (mode 0600, in a 0700 folder): whoever holds it can
make the run's workers execute code. Hand it over as you would an SSH key.

Default folder: ``$ZETTA_JOIN_DIR``, else ``~/.zetta_utils/join``; file ``<run_id>.json``.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import attrs

from zetta_utils.message_queues.signing import decode_key

__all__ = [
    "JOIN_DIR_ENV",
    "JoinInfo",
    "default_join_path",
    "read_join_file",
    "worker_command",
    "write_join_file",
]

JOIN_DIR_ENV = "ZETTA_JOIN_DIR"
_VERSION = 1


@attrs.frozen
class JoinInfo:
    run_id: str
    work_queue: str
    outcome_queue: str
    region: str
    endpoint: str | None
    key: str
    """The run's message key, url-safe base64."""
    visibility_timeout_s: int
    prefetch: int


def default_join_path(run_id: str) -> Path:
    return (
        Path(os.environ.get(JOIN_DIR_ENV) or "~/.zetta_utils/join").expanduser() / f"{run_id}.json"
    )


def write_join_file(info: JoinInfo, path: str | os.PathLike[str] | None = None) -> Path:
    """Write ``info`` readable by the owner only (atomically); the file's path."""
    target = Path(path).expanduser() if path is not None else default_join_path(info.run_id)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"version": _VERSION, **attrs.asdict(info)}, f, indent=1)
    os.replace(tmp, target)
    return target


def read_join_file(path: str | os.PathLike[str]) -> JoinInfo:
    """The run described by the join file at ``path``; ``ValueError`` naming the bad field."""
    try:
        doc: Any = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"join file {path}: no such file (it exists while its run runs)") from None
    except ValueError as e:
        raise ValueError(f"join file {path}: not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("version") != _VERSION:
        raise ValueError(
            f"join file {path}: not a version-{_VERSION} join file written by `zetta run`"
        )
    fields = attrs.fields_dict(JoinInfo)
    values: dict[str, Any] = {}
    for name in fields:
        value = doc.get(name)
        if name == "endpoint":
            ok = value is None or isinstance(value, str)
        elif name in ("visibility_timeout_s", "prefetch"):
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        else:
            ok = isinstance(value, str) and bool(value)
        if not ok:
            raise ValueError(f"join file {path}: `{name}` is missing or invalid: {value!r}")
        values[name] = value
    decode_key(values["key"])  # a clear error now rather than refusals later
    return JoinInfo(**values)


def worker_command(path: str | os.PathLike[str]) -> str:
    """The command line that starts a worker for the run of the join file at ``path``."""
    return f"zetta worker --join {shlex.quote(str(path))}"
