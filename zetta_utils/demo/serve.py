"""Serve local precomputed volumes to Neuroglancer in a browser, and nothing else:
``python -m zetta_utils.demo.serve VOLUME [VOLUME ...] [--port 8000]`` (default: the two demo
layers). Then open the link ``zetta show`` prints. Stop it with Ctrl-C.

Each VOLUME is a directory holding a precomputed ``info`` file; it is served read-only at
``http://127.0.0.1:PORT/<its directory name>/``, the address ``zetta show``'s link reads. Nothing
else is reachable: not the directory around a volume, not a path with ``..`` in it, not a link
leading out of the volume, not a directory listing. The server listens on 127.0.0.1 only, answers
only requests addressed to 127.0.0.1 or localhost (a web page that rebinds its own name to this
machine gets nothing), and allows cross-origin reads only from the Neuroglancer the link opens
(``--allow-origin`` adds others, e.g. a Neuroglancer of your own).
"""

from __future__ import annotations

import argparse
import http.server
import mimetypes
import os
import posixpath
import shutil
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["DEFAULT_ALLOWED_ORIGINS", "VolumeRequestHandler", "make_server", "serve_command"]

HOST = "127.0.0.1"
DEFAULT_ALLOWED_ORIGINS = ("https://neuroglancer-demo.appspot.com",)


def _volume_root(path: str) -> tuple[str, str]:
    """``(name, real directory)`` of a volume to serve; a clear error if it is not one."""
    if path.startswith("file://"):
        path = path[len("file://") :]
    given = os.path.abspath(os.path.expanduser(path))
    root = os.path.realpath(given)
    if not os.path.isdir(root):
        raise NotADirectoryError(f"volume: {root} is not a directory")
    if not os.path.isfile(os.path.join(root, "info")):
        raise FileNotFoundError(
            f"volume: {root} has no precomputed 'info' file; give the volume's own directory "
            "(e.g. ~/zetta_utils_temp), not a folder around it"
        )
    # named as given (the link names it so), even where that is a symbolic link
    return os.path.basename(given.rstrip(os.sep)) or "volume", root


class VolumeRequestHandler(http.server.BaseHTTPRequestHandler):
    """GET and HEAD of the files inside the served volumes; 404 for anything else."""

    server: VolumeServer

    def do_GET(self) -> None:
        self._serve(with_body=True)

    def do_HEAD(self) -> None:
        self._serve(with_body=False)

    def do_OPTIONS(self) -> None:
        if not self._host_ok():
            return
        self.send_response(204)
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD")
        self.end_headers()

    def end_headers(self) -> None:
        origin = self.headers.get("Origin")
        if origin is not None and (
            "*" in self.server.allowed_origins or origin in self.server.allowed_origins
        ):
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]").lower()
        if host in ("127.0.0.1", "localhost"):
            return True
        self.send_error(403, "requests must be addressed to 127.0.0.1 or localhost")
        return False

    def _file(self) -> str | None:
        """The file the request names, or None if it names nothing served."""
        raw = urllib.parse.urlsplit(self.path).path
        parts = urllib.parse.unquote(raw).split("/")
        if len(parts) < 3 or parts[0] != "":
            return None
        name, rel = parts[1], parts[2:]
        root = self.server.volumes.get(name)
        if root is None or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in rel):
            return None
        path = os.path.realpath(os.path.join(root, *rel))
        if os.path.commonpath([root, path]) != root or not os.path.isfile(path):
            return None  # (a link out of the volume, or a directory)
        return path

    def _serve(self, with_body: bool) -> None:
        if not self._host_ok():
            return
        path = self._file()
        if path is None:
            self.send_error(404, "not part of a served volume")
            return
        try:
            f = open(path, "rb")
        except OSError:
            self.send_error(404, "not part of a served volume")
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            self.send_response(200)
            self.send_header(
                "Content-Type", mimetypes.guess_type(path)[0] or "application/octet-stream"
            )
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if with_body:
                shutil.copyfileobj(f, self.wfile)


class VolumeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, volumes: Mapping[str, str], port: int, allowed_origins: Sequence[str]):
        self.volumes = dict(volumes)
        self.allowed_origins = tuple(allowed_origins)
        super().__init__((HOST, port), VolumeRequestHandler)

    def url(self, name: str) -> str:
        return f"http://{HOST}:{self.server_port}/{urllib.parse.quote(name)}"


def make_server(
    volumes: str | Sequence[str],
    port: int = 8000,
    allowed_origins: Sequence[str] = DEFAULT_ALLOWED_ORIGINS,
) -> VolumeServer:
    """A server of the volume directories ``volumes`` on 127.0.0.1 (not started: call
    ``serve_forever``). ``port=0`` picks a free port."""
    paths = [volumes] if isinstance(volumes, str) else list(volumes)
    if not paths:
        raise ValueError("volumes: give at least one volume directory")
    served: dict[str, str] = {}
    for path in paths:
        name, root = _volume_root(path)
        if served.get(name, root) != root:
            raise ValueError(f"volumes: two volumes are named {name!r} ({served[name]} and {root})")
        served[name] = root
    return VolumeServer(served, port, allowed_origins)


def serve_command(volume_dir: str, port: int = 8000) -> str:
    """The command line that serves ``volume_dir`` where ``zetta show``'s link reads it."""
    home = os.path.expanduser("~")
    shown = volume_dir
    if volume_dir == home or volume_dir.startswith(home.rstrip(os.sep) + os.sep):
        shown = "~" + volume_dir[len(home) :]
    return f"python -m zetta_utils.demo.serve {shown}" + (f" --port {port}" if port != 8000 else "")


def main(argv: list[str] | None = None) -> None:
    from .volume import DEFAULT_DEMO_DIR, LAYER_NAMES

    parser = argparse.ArgumentParser(
        prog="python -m zetta_utils.demo.serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "volumes", nargs="*", metavar="VOLUME", help="precomputed volume directories"
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help=(
            "also let pages of ORIGIN read the volumes "
            f"(always: {', '.join(DEFAULT_ALLOWED_ORIGINS)})"
        ),
    )
    args = parser.parse_args(argv)
    volumes = args.volumes or [posixpath.join(DEFAULT_DEMO_DIR, name) for name in LAYER_NAMES]
    try:
        server = make_server(volumes, args.port, (*DEFAULT_ALLOWED_ORIGINS, *args.allow_origin))
    except (OSError, ValueError) as e:
        parser.error(str(e))
    for name, root in server.volumes.items():
        print(f"serving {root} at {server.url(name)}")
    print("(only these volumes, to this machine; Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":  # pragma: no cover
    main()
