"""Serve a local directory of volumes over HTTP with CORS, so that Neuroglancer in a browser can
read them: ``python -m zetta_utils.demo.serve [DIR] [--port 8000]`` (default DIR: the demo
volume's directory). Then open the link ``zetta show`` prints. Stop it with Ctrl-C.

Read-only and for your own machine: it binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
from typing import Any


class CORSRequestHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with ``Access-Control-Allow-Origin: *`` (Neuroglancer fetches cross-origin)."""

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def make_server(
    directory: str, port: int = 8000, host: str = "127.0.0.1"
) -> http.server.ThreadingHTTPServer:
    """A server of ``directory`` (not started: call ``serve_forever``)."""
    root = os.path.abspath(os.path.expanduser(directory))
    if not os.path.isdir(root):
        raise NotADirectoryError(f"directory: {root} is not a directory")
    handler = functools.partial(CORSRequestHandler, directory=root)
    return http.server.ThreadingHTTPServer((host, port), handler)


def main(argv: list[str] | None = None) -> None:
    from .volume import DEFAULT_DEMO_DIR

    parser = argparse.ArgumentParser(prog="python -m zetta_utils.demo.serve", description=__doc__)
    parser.add_argument("directory", nargs="?", default=DEFAULT_DEMO_DIR)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    server = make_server(args.directory, args.port, args.host)
    print(
        f"serving {os.path.abspath(os.path.expanduser(args.directory))} at http://{args.host}:{server.server_port} (Ctrl-C stops)"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":  # pragma: no cover
    main()
