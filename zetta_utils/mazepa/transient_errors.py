"""Which exceptions are worth retrying.

A task that fails with a *transient* error (the network, the storage service, a lost worker, memory
pressure) is retried up to ``max_retry`` times. Any other exception (``TypeError``, ``ValueError``,
``KeyError``, ``AssertionError``, ...) is taken to be a bug: retrying would fail the same way, so by
default the run stops at its first occurrence.
"""

from __future__ import annotations

__all__ = [
    "TransientError",
    "WorkerCrashedError",
    "is_transient_error",
    "register_transient_error",
]


class TransientError(Exception):
    """Raise (or subclass) this in operation code to say "try again later"."""


class WorkerCrashedError(TransientError):
    """The worker process died (segfault, ``os._exit``, OOM kill) while running the task."""


# OSError subclasses that describe a wrong program or wrong input rather than a passing condition.
_PERMANENT_OS_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)

_TRANSIENT_TYPES: list[type[BaseException]] = [
    TransientError,
    MemoryError,
    TimeoutError,
    ConnectionError,
]

# Third-party exceptions named by "module.QualName", so that their libraries need not be imported.
_TRANSIENT_NAMES: set[str] = {
    "botocore.exceptions.EndpointConnectionError",
    "botocore.exceptions.ConnectionClosedError",
    "botocore.exceptions.ReadTimeoutError",
    "urllib3.exceptions.ProtocolError",
    "urllib3.exceptions.ReadTimeoutError",
    "google.api_core.exceptions.ServiceUnavailable",
    "google.api_core.exceptions.TooManyRequests",
    "google.api_core.exceptions.InternalServerError",
    "google.auth.exceptions.TransportError",
    "requests.exceptions.ConnectionError",
    "requests.exceptions.Timeout",
}


def register_transient_error(exc: type[BaseException] | str) -> None:
    """Treat ``exc`` (a class, or ``"module.QualName"``) and its subclasses as transient."""
    if isinstance(exc, str):
        if "." not in exc:
            raise ValueError(f"register_transient_error: expected 'module.QualName', got {exc!r}")
        _TRANSIENT_NAMES.add(exc)
    elif isinstance(exc, type) and issubclass(exc, BaseException):
        _TRANSIENT_TYPES.append(exc)
    else:
        raise TypeError(
            f"register_transient_error: expected an exception class or a name, got {exc!r}"
        )


def is_transient_error(exc: BaseException) -> bool:
    """Whether ``exc`` should be retried."""
    if isinstance(exc, _PERMANENT_OS_ERRORS) and not isinstance(exc, TransientError):
        return False
    if isinstance(exc, tuple(_TRANSIENT_TYPES)):
        return True
    if isinstance(exc, OSError):  # I/O errors in general: broken pipes, resets, EIO, ...
        return True
    for klass in type(exc).__mro__:
        if f"{klass.__module__}.{klass.__qualname__}" in _TRANSIENT_NAMES:
            return True
    return False
