"""moto's S3 server, threaded, answering every request ``--latency-ms`` milliseconds late.

Object stores (GCS, S3) answer each request in 20-100 ms; moto on 127.0.0.1 answers in well
under one. This runs the same application as ``moto_server`` (``DomainDispatcherApplication``,
werkzeug's threaded server: one thread per connection, its request log on stderr in the same
format) behind a WSGI middleware that sleeps ``--latency-ms`` before handing each request on:
the wait costs no CPU, and requests in flight at once wait at once, each in its own thread, so
that a client keeping N requests in flight gets about N times the throughput of one, as from a
real object store. The delay is applied once the request's headers have arrived, before its
body is read (a PUT's upload time is not part of it) and before anything is answered. Nothing
outside this process is slowed (no ``tc netem``: the loopback is shared).

Used by ``bench_matrix.py --s3-latency-ms N`` (and the benchmarks that reuse its ``s3_server``).

Usage:
  .venv/bin/python bench/s3_latency_server.py [-H 127.0.0.1] -p PORT [--latency-ms 20]
  .venv/bin/python bench/s3_latency_server.py --check [--latency-ms 20] [--requests 20]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def delayed(app: WSGIApp, seconds: float, sleep: Callable[[float], None] = time.sleep) -> WSGIApp:
    """``app`` answering each request ``seconds`` late (``sleep``: no CPU spent)."""

    def wrapper(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if seconds > 0:
            sleep(seconds)
        return app(environ, start_response)

    return wrapper


def serve(host: str, port: int, latency_ms: float) -> None:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    os.environ.setdefault("MOTO_PORT", str(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        host,
        port,
        delayed(app, latency_ms / 1000),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


def check(latency_ms: float, requests: int) -> None:
    """Times small GETs and PUTs, one at a time and 8 at once, against a server started with
    ``bench_matrix.s3_server`` at ``latency_ms``: each should take about the latency, and 8 at
    once about as long as one."""
    import concurrent.futures

    import bench_matrix as bm
    import boto3

    with bm.s3_server(latency_ms=latency_ms) as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.put_object(Bucket="bench", Key="warm", Body=b"x")  # connection opened, untimed
        for name, call in (
            ("PUT 1 kB", lambda i: s3.put_object(Bucket="bench", Key=f"k{i}", Body=b"x" * 1024)),
            ("GET 1 kB", lambda i: s3.get_object(Bucket="bench", Key=f"k{i}")["Body"].read()),
        ):
            times = []
            for i in range(requests):
                t = time.perf_counter()
                call(i)
                times.append((time.perf_counter() - t) * 1000)
            print(
                f"{name}: median {statistics.median(times):.1f} ms, {min(times):.1f}-"
                f"{max(times):.1f} ms over {requests} requests one at a time "
                f"(asked: {latency_ms:g} ms)"
            )
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            t = time.perf_counter()
            list(
                pool.map(
                    lambda i: s3.get_object(Bucket="bench", Key=f"k{i % requests}")["Body"].read(),
                    range(8 * 4),
                )
            )
            per_batch = (time.perf_counter() - t) * 1000 / 4
        print(f"GET 1 kB, 8 in flight: {per_batch:.1f} ms per 8 requests")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=20.0, help="delay of each request")
    parser.add_argument("--check", action="store_true", help="time requests to such a server")
    parser.add_argument("--requests", type=int, default=20, help="requests timed by --check")
    args = parser.parse_args(argv)
    if args.latency_ms < 0:
        parser.error(f"--latency-ms must be >= 0, got {args.latency_ms}")
    if args.check:
        check(args.latency_ms, args.requests)
        return
    if not args.port:
        parser.error("-p/--port is required to serve")
    serve(args.host, args.port, args.latency_ms)


if __name__ == "__main__":
    main()
