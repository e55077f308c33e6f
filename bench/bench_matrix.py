"""The benchmark matrix of issue 24: storage kinds x flows x process counts, each against a plain
library copy of the same volume measured in the same round.

Storage (uint8, chunks of 1024 x 1024 x 1, one scale):

- ``raw``: local raw, layers of ``build_ts_layer``;
- ``gzip``: local chunk files gzipped by CloudVolume (``*.gz``), read with ``build_cv_layer``;
  written raw (``build_cv_layer`` refuses gzip on local paths: TensorStore would read zeros);
- ``jpeg``: local jpeg, ``build_ts_layer`` (lossy: outputs are compared with a tolerance);
- ``sharded``: a local sharded raw source, read with ``build_ts_layer``, written to an unsharded
  raw dst (a shard is one file: chunkwise writes from several tasks would race on it);
- ``s3-raw``, ``s3-gzip``: raw, and gzip (``Content-Encoding``, written by CloudVolume), on an
  S3-compatible server (``moto_server``) this benchmark starts on 127.0.0.1; the flows'
  intermediaries live there too.

Flows (from ``bench_subchunkable.py``): (a) one level 1024 x 1024 x 1 with skip_intermediaries;
(c) the guide's crop + blend on two levels. Processes: 1 and 2.

Baseline, in every round: TensorStore copying the volume chunk by chunk (``order='F'``, no
fsync) in the same number of processes; CloudVolume (``parallel=1``) for the gzip kinds, which
TensorStore cannot read locally nor write. Before each timed run on local storage, ``os.sync()``
writes out what earlier runs left dirty (untimed). Rounds: the baseline, then each flow,
``--repeat`` times; printed: the best throughput of each, the ratio of the bests, the median and
range of the per-round ratios (each run against its own round's baseline).

With one process, the CPU time of the baseline and of each flow (all threads of this process,
and the S3 server's) is printed too, with the median and range of their per-round ratio: unlike
wall time it does not depend on what else a shared machine runs.

Volumes are sized per storage kind so that a baseline copy lasts at least about ``--seconds``
(default 5 s) with the largest process count: four z sections are copied first to measure, then
the volume gets as many sections as ``seconds`` times that count takes serially (``--max-z`` at
most; 512 sections of 4096 x 4096 uint8 are 8 GiB, and src, dst and intermediaries are on disk
at once). ``--quick`` (one 2048 x 2048 section, one round) is a smoke run for
the test suite: its timings mean nothing.

``--z N`` gives every kind N sections instead (no sizing): e.g. a multiple of the process count
and at least 4, so that flow (c) with 2 processes runs in section tasks (4 waves at least, see
``volumetric_apply_flow.section_waves``) of equal share; object storage at a latency otherwise
gets few sections, sized on a probe that the shared machine's load skews.

``--s3-latency-ms N`` (default 0): the S3 server answers every request N ms late, as object
stores do (20-100 ms), without spending CPU while it waits: moto's application runs in its
threaded server (a thread per connection) behind a WSGI middleware that sleeps N ms before each
request is handled (``s3_latency_server.py``; its ``--check`` times requests to such a server).
Requests in flight at once wait at once, so the figures then show whether a run keeps enough
requests in flight. With 0, ``moto_server`` itself runs, as before. Only this benchmark's server
is slowed (no ``tc netem``, which would slow all loopback traffic of the machine).

The flows run with ``worker_start_cost_s=0``: their 2-process figures are those of the workers,
never of a run that mazepa kept serial.

Usage:
  .venv/bin/python bench/bench_matrix.py [--kinds raw,gzip,jpeg,sharded,s3-raw,s3-gzip]
      [--procs 1,2] [--seconds 5] [--repeat 2] [--size 4096] [--max-z 512] [--quick]
      [--z N] [--s3-latency-ms 0] [--flows a,c]

``--flows c`` (or ``a``) measures one flow only (the baseline still runs every round).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_subchunkable as bs

CHUNK = 1024
RES = bs.RES
KINDS = ("raw", "gzip", "jpeg", "sharded", "s3-raw", "s3-gzip")
FLOWS = {
    "(a) one level": bs.CASES["(a) 1 level, skip_intermediaries"],
    "(c) crop + blend": bs.CASES["(c) crop + blend on both levels"],
}
GOALS = {"(a) one level": 0.9, "(c) crop + blend": 0.5}
RUN_FLOWS = dict(FLOWS)
"""The flows this run measures (``--flows``)."""
SHARDING = {
    "@type": "neuroglancer_uint64_sharded_v1",
    "preshift_bits": 0,
    "hash": "identity",
    # chunk ids are the compressed Morton codes of the chunk grid: with x and y 4 chunks wide,
    # their two lowest bits pick a chunk within a 2 x 2 square of one section, the next 10 the
    # shard, so that writing one section rewrites no shard of another
    "minishard_bits": 2,
    "shard_bits": 10,
    "minishard_index_encoding": "gzip",
    "data_encoding": "raw",
}


@dataclass(frozen=True)
class Kind:
    name: str
    encoding: str
    gzip: bool  # chunks stored gzipped (CloudVolume's compress="gzip")
    sharded: bool
    s3: bool

    @property
    def library(self) -> str:
        """What the layers and the baseline use: "ts" or "cv"."""
        return "cv" if self.gzip else "ts"


def kind_of(name: str) -> Kind:
    if name not in KINDS:
        raise ValueError(
            f"--kinds: unknown storage kind {name!r}; expected some of {', '.join(KINDS)}"
        )
    return Kind(
        name,
        encoding="jpeg" if name == "jpeg" else "raw",
        gzip=name.endswith("gzip"),
        sharded=name == "sharded",
        s3=name.startswith("s3"),
    )


# ---- storage ---------------------------------------------------------------------------------


@contextlib.contextmanager
def s3_server(log_path: str | None = None, latency_ms: float | None = None) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 and the environment both libraries need to reach it; its
    request log in ``log_path`` if given. ``latency_ms`` (default: ``S3_LATENCY_MS[0]``, set by
    ``--s3-latency-ms``): each request is answered that many milliseconds late, by moto's
    application behind ``s3_latency_server.py``'s sleeping middleware (0: ``moto_server``
    itself)."""
    if latency_ms is None:
        latency_ms = S3_LATENCY_MS[0]
    exe = os.path.join(os.path.dirname(sys.executable), "moto_server")
    if not os.path.exists(exe):
        exe = shutil.which("moto_server") or ""
    if not exe:
        raise SystemExit(
            "moto_server not found (pip install 'moto[server]'): needed by the s3 kinds"
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    command = [exe, "-H", "127.0.0.1", "-p", str(port)]
    if latency_ms:
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "s3_latency_server.py")
        command = [sys.executable, script, *command[1:], "--latency-ms", str(latency_ms)]
    with open(log_path or os.devnull, "wb") as log:
        proc = _SERVER[0] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=1).read()
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        os.environ.update(
            {
                "ZETTA_S3_ENDPOINT": endpoint,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
            }
        )
        import boto3

        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
            Bucket="bench"
        )
        yield endpoint
    finally:
        proc.terminate()
        proc.wait()


_SERVER: list[Any] = [None]
"""The S3 server's process, while it runs (its CPU time is counted with ours)."""
S3_LATENCY_MS: list[float] = [0.0]
"""The delay of each S3 request, in milliseconds, of the servers ``s3_server`` starts
(``--s3-latency-ms``)."""


def cpu_seconds() -> float:
    """CPU time of this process (all its threads) and of the S3 server: with one process, the
    work of a run whatever else the machine runs (wall time is not, on a shared machine)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = usage.ru_utime + usage.ru_stime
    server = _SERVER[0]
    if server is not None and server.poll() is None:
        with open(f"/proc/{server.pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class Storage:
    """Where one kind's volumes live: a local directory or a prefix of the S3 bucket."""

    def __init__(self, kind: Kind, root: str):
        self.kind = kind
        self.base = (
            f"s3://bench/{kind.name}" if kind.s3 else "file://" + os.path.join(root, kind.name)
        )

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def clear(self, name: str) -> None:
        url = self.url(name)
        if url.startswith("file://"):
            shutil.rmtree(url[len("file://") :], ignore_errors=True)
            return
        import boto3

        s3 = boto3.resource(
            "s3", endpoint_url=os.environ["ZETTA_S3_ENDPOINT"], region_name="us-east-1"
        )
        s3.Bucket("bench").objects.filter(Prefix=url[len("s3://bench/") :] + "/").delete()

    def write_info(self, name: str, size: int, z: int, sharded: bool) -> None:
        from zetta_utils.layer.volumetric import precomputed

        scale: dict[str, Any] = {
            "key": "_".join(str(r) for r in RES),
            "resolution": list(RES),
            "voxel_offset": [0, 0, 0],
            "size": [size, size, z],
            "chunk_sizes": [[CHUNK, CHUNK, 1]],
            "encoding": self.kind.encoding,
        }
        if sharded:
            scale["sharding"] = SHARDING
        info = {"type": "image", "data_type": "uint8", "num_channels": 1, "scales": [scale]}
        precomputed.write_file(
            precomputed.parse_path(self.url(name)), "info", json.dumps(info).encode()
        )

    def settle(self) -> None:
        """Before a timed run: the dirty pages and deletions of what ran before are written out,
        so that no run pays for its predecessor's writeback (the first local raw baseline after
        writing a 5 GB source took 3.4x its second round)."""
        if not self.kind.s3:
            os.sync()

    def fresh(self, name: str, size: int, z: int, sharded: bool = False) -> str:
        self.clear(name)
        self.write_info(name, size, z, sharded)
        return self.url(name)


def ts_open(url: str) -> Any:
    import tensorstore as ts

    from zetta_utils.layer.volumetric import precomputed

    kvstore = precomputed.tensorstore_kvstore_spec(precomputed.parse_path(url))
    spec = {"driver": "neuroglancer_precomputed", "kvstore": kvstore}
    return ts.open(spec, context=ts.Context({"file_io_sync": False})).result()


def cv_open(url: str, gzip: bool) -> Any:
    from cloudvolume import CloudVolume

    from zetta_utils.layer.volumetric import precomputed
    from zetta_utils.layer.volumetric.cloudvol.backend import cloudvolume_path

    path = cloudvolume_path(precomputed.parse_path(url))
    return CloudVolume(
        path,
        compress="gzip" if gzip else False,
        progress=False,
        parallel=1,
        fill_missing=True,
        cdn_cache=False,
    )


def make_source(storage: Storage, size: int, z: int) -> str:
    kind = storage.kind
    url = storage.fresh("src", size, z, sharded=kind.sharded)
    rng = np.random.default_rng(0)
    # smooth-ish data, so that jpeg's error stays small, with noise, so that gzip has work to do
    ramp = (np.add.outer(np.arange(size), np.arange(size)) // 64 % 256).astype(np.uint8)
    if kind.library == "cv":
        cv = cv_open(url, gzip=True)
        for zi in range(z):
            noise = rng.integers(0, 16, (size, size), dtype=np.uint8)
            cv[:, :, zi : zi + 1] = (ramp + noise)[:, :, None, None]
        return url
    vol = ts_open(url)
    for zi in range(z):
        noise = rng.integers(0, 16, (size, size), dtype=np.uint8)
        vol[:, :, zi : zi + 1, 0].write((ramp + noise)[:, :, None]).result()
    return url


# ---- the baseline ----------------------------------------------------------------------------


def _copy_part(
    kind_name: str, src: str, dst: str, size: int, z: int, part: int, parts: int
) -> None:
    kind = kind_of(kind_name)
    if kind.library == "cv":
        s, d = cv_open(src, gzip=True), cv_open(dst, gzip=kind.s3)
    else:
        s, d = ts_open(src), ts_open(dst)
    k = 0
    for zi in range(z):
        for y in range(0, size, CHUNK):
            for x in range(0, size, CHUNK):
                if k % parts == part:
                    if kind.library == "cv":
                        d[x : x + CHUNK, y : y + CHUNK, zi : zi + 1] = s[
                            x : x + CHUNK, y : y + CHUNK, zi : zi + 1
                        ]
                    else:
                        a = s[x : x + CHUNK, y : y + CHUNK, zi : zi + 1].read(order="F").result()
                        d[x : x + CHUNK, y : y + CHUNK, zi : zi + 1].write(a).result()
                k += 1


def baseline_copy(storage: Storage, src: str, size: int, z: int, procs: int) -> float:
    dst = storage.fresh("base", size, z)
    storage.settle()
    start = time.perf_counter()
    args = [(storage.kind.name, src, dst, size, z, i, procs) for i in range(procs)]
    if procs == 1:
        _copy_part(*args[0])
    else:
        from zetta_utils.mazepa.worker_process import tune_malloc

        with multiprocessing.get_context("forkserver").Pool(procs, initializer=tune_malloc) as pool:
            pool.starmap(_copy_part, args)
    return time.perf_counter() - start


# ---- the flows -------------------------------------------------------------------------------


def build_layer(kind: Kind, url: str) -> Any:
    if kind.library == "cv":
        from zetta_utils.layer.volumetric.cloudvol import build_cv_layer

        return build_cv_layer(
            url, cv_kwargs={"compress": "gzip"} if kind.s3 and not url.endswith("/src") else None
        )
    from zetta_utils.layer.volumetric.tensorstore import build_ts_layer

    return build_ts_layer(url)


def run_flow(
    storage: Storage, src_url: str, size: int, z: int, case: dict[str, Any], procs: int
) -> float:
    from zetta_utils import mazepa
    from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow

    kind = storage.kind
    dst_url = storage.fresh("dst", size, z)
    storage.clear("tmp")
    kwargs = dict(case)
    if not kwargs.get("skip_intermediaries"):
        kwargs["level_intermediaries_dirs"] = [storage.url("tmp")] * len(
            kwargs["processing_chunk_sizes"]
        )
    flow = build_subchunkable_apply_flow(
        dst=build_layer(kind, dst_url),
        dst_resolution=RES,
        start_coord=(0, 0, 0),
        end_coord=(size, size, z),
        coord_resolution=RES,
        fn=bs.identity,
        op_kwargs={"src": build_layer(kind, src_url)},
        verbose=False,
        **kwargs,
    )
    storage.settle()
    start = time.perf_counter()
    # worker_start_cost_s=0: the matrix measures the workers themselves, as sized to need them
    mazepa.execute(flow, num_procs=procs, show_progress=False, worker_start_cost_s=0)
    return time.perf_counter() - start


def check_output(kind: Kind, src_url: str, dst_url: str) -> str:
    """'== source', or for jpeg the mean absolute difference (lossy re-encoding)."""
    src = _read_all(kind, src_url)
    dst = _read_all(kind, dst_url)
    if kind.encoding == "jpeg":
        diff = float(np.abs(src.astype(np.int16) - dst.astype(np.int16)).mean())
        return f"jpeg: mean |dst - src| {diff:.2f}" + ("" if diff < 4 else " (TOO LARGE)")
    return "== source" if np.array_equal(src, dst) else "DIFFERS from source"


def _read_all(kind: Kind, url: str) -> Any:
    if kind.library == "cv":
        return np.asarray(cv_open(url, gzip=kind.s3)[:, :, :])
    return ts_open(url).read(order="F").result()


# ---- the matrix ------------------------------------------------------------------------------


def size_volume(storage: Storage, size: int, seconds: float, max_z: int, procs: int) -> int:
    """Sections giving a baseline copy of at least about ``seconds`` with ``procs`` processes:
    ``seconds * procs`` of serial copying (a linear gain is the most it can have), measured on
    a few sections so that opening the volume does not count as copying."""
    probe = 4
    src = make_source(storage, size, probe)
    per_section = baseline_copy(storage, src, size, probe, 1) / probe
    return max(1, min(max_z, math.ceil(seconds * procs / max(per_section, 1e-3))))


def run_kind(kind: Kind, root: str, args: argparse.Namespace) -> list[str]:
    storage = Storage(kind, root)
    size = args.size
    most_procs = max(args.procs)
    z = args.z or size_volume(storage, size, args.seconds, args.max_z, most_procs)
    src = make_source(storage, size, z)
    mvox = size * size * z / 1e6
    lines = [
        f"\n{kind.name}: {size} x {size} x {z} uint8 ({mvox:.0f} Mvox), baseline "
        f"{'CloudVolume' if kind.library == 'cv' else 'TensorStore'}"
    ]
    print(lines[0], flush=True)
    for procs in args.procs:
        base_times: list[float] = []
        times: dict[str, list[float]] = {name: [] for name in RUN_FLOWS}
        base_cpu: list[float] = []
        cpus: dict[str, list[float]] = {name: [] for name in RUN_FLOWS}
        checks: dict[str, str] = {}
        for _ in range(args.repeat):
            cpu = cpu_seconds()
            base_times.append(baseline_copy(storage, src, size, z, procs))
            base_cpu.append(cpu_seconds() - cpu)
            for name, case in RUN_FLOWS.items():
                cpu = cpu_seconds()
                times[name].append(run_flow(storage, src, size, z, case, procs))
                cpus[name].append(cpu_seconds() - cpu)
                if name not in checks:
                    checks[name] = check_output(kind, src, storage.url("dst"))
        base = mvox / min(base_times)
        lines.append(
            f"  {procs} process(es): baseline {base:7.1f} Mvox/s (best of {args.repeat}, "
            f"{min(base_times):.2f}-{max(base_times):.2f} s)"
        )
        RESULTS[(kind.name, procs, "baseline")] = base
        for name in RUN_FLOWS:
            rate = mvox / min(times[name])
            RESULTS[(kind.name, procs, name)] = rate
            per_round = sorted(b / t for b, t in zip(base_times, times[name], strict=True))
            lines.append(
                f"    {name:18s} {rate:7.1f} Mvox/s  ratio {rate / base:5.2f}  (per round: median "
                f"{statistics.median(per_round):.2f}, {per_round[0]:.2f}-{per_round[-1]:.2f}; "
                f"{min(times[name]):.2f}-{max(times[name]):.2f} s)  output {checks[name]}"
            )
            if procs == 1:
                lines.append(_cpu_line(base_cpu, cpus[name]))
        print("\n".join(lines[-1 - len(RUN_FLOWS) * (2 if procs == 1 else 1) :]), flush=True)
    return lines


def _cpu_line(base_cpu: list[float], flow_cpu: list[float]) -> str:
    """The baseline's CPU time over the flow's, per round (one process: both run here)."""
    per_round = sorted(b / f for b, f in zip(base_cpu, flow_cpu, strict=True))
    return (
        f"      CPU time: ratio median {statistics.median(per_round):.2f} "
        f"({per_round[0]:.2f}-{per_round[-1]:.2f}); baseline {min(base_cpu):.2f}-"
        f"{max(base_cpu):.2f} s, flow {min(flow_cpu):.2f}-{max(flow_cpu):.2f} s"
    )


RESULTS: dict[tuple[str, int, str], float] = {}


def goals(kinds: list[Kind], procs: list[int]) -> list[str]:
    """The issue's goals, per kind: (a) >= 0.9x, (c) >= 0.5x of the baseline; 2 processes >=
    1.6x one process where the baseline itself gains that much."""
    out = []
    for kind in kinds:
        for p in procs:
            base = RESULTS[(kind.name, p, "baseline")]
            for name in RUN_FLOWS:
                goal = GOALS[name]
                ratio = RESULTS[(kind.name, p, name)] / base
                if ratio < goal:
                    out.append(
                        f"{kind.name} {p}p {name}: {ratio:.2f}x of the baseline, goal {goal}x"
                    )
        if 1 in procs and 2 in procs:
            gain = RESULTS[(kind.name, 2, "baseline")] / RESULTS[(kind.name, 1, "baseline")]
            for name in RUN_FLOWS:
                flow_gain = RESULTS[(kind.name, 2, name)] / RESULTS[(kind.name, 1, name)]
                if gain >= 1.6 and flow_gain < 1.6:
                    out.append(
                        f"{kind.name} {name}: 2 processes {flow_gain:.2f}x of one, the baseline "
                        f"{gain:.2f}x"
                    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kinds", default=",".join(KINDS), help="storage kinds, comma-separated")
    parser.add_argument("--procs", default="1,2", help="process counts, comma-separated")
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="length of a serial baseline copy"
    )
    parser.add_argument("--repeat", type=int, default=2, help="rounds per process count")
    parser.add_argument("--size", type=int, default=4096, help="x and y size (a multiple of 2048)")
    parser.add_argument("--max-z", type=int, default=512, help="most z sections")
    parser.add_argument(
        "--z", type=int, default=0, help="z sections of every kind (default: sized by --seconds)"
    )
    parser.add_argument(
        "--flows", default="a,c", help="flows to measure, comma-separated: a, c (default both)"
    )
    parser.add_argument("--dir", default=None, help="scratch directory (default: a temporary one)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2048 x 2048, 1 section, 1 round"
    )
    parser.add_argument(
        "--s3-latency-ms",
        type=float,
        default=0.0,
        help="the s3 kinds: each request answered this many ms late (default 0)",
    )
    args = parser.parse_args(argv)
    if args.z < 0:
        parser.error(f"--z must be >= 0, got {args.z}")
    if args.s3_latency_ms < 0:
        parser.error(f"--s3-latency-ms must be >= 0, got {args.s3_latency_ms}")
    S3_LATENCY_MS[0] = args.s3_latency_ms
    chosen = [f.strip() for f in args.flows.split(",") if f.strip()]
    by_letter = {name[1]: name for name in FLOWS}
    if not chosen or any(f not in by_letter for f in chosen):
        parser.error(f"--flows: expected letters among a, c, comma-separated, got {args.flows!r}")
    RUN_FLOWS.clear()
    RUN_FLOWS.update((by_letter[f], FLOWS[by_letter[f]]) for f in sorted(set(chosen)))
    if args.quick:
        args.size, args.seconds, args.repeat, args.max_z = 2048, 0.0, 1, 1
    if args.size % 2048:
        parser.error(
            f"--size must be a multiple of 2048 (flow (c)'s reduction chunk), got {args.size}"
        )
    kinds = [kind_of(k.strip()) for k in args.kinds.split(",") if k.strip()]
    try:
        args.procs = [int(p) for p in args.procs.split(",")]
    except ValueError:
        parser.error(f"--procs must be comma-separated integers, got {args.procs!r}")
    from zetta_utils.mazepa.worker_process import tune_malloc

    tune_malloc()
    root = tempfile.mkdtemp(prefix="bench_matrix_", dir=args.dir)
    print(
        f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}, "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    try:
        with contextlib.ExitStack() as stack:
            if any(k.s3 for k in kinds):
                endpoint = stack.enter_context(s3_server())
                print(
                    f"moto S3 server at {endpoint}, each request answered "
                    f"{args.s3_latency_ms:g} ms late",
                    flush=True,
                )
            if 2 in args.procs:
                print(f"fork server start (once): {bs.fork_server_start(2):.2f} s", flush=True)
            for kind in kinds:
                run_kind(kind, root, args)
            missed = goals(kinds, args.procs)
        print(
            f"\nload average at the end {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
            f"{os.getloadavg()[2]:.2f}"
        )
        print("goals missed:" if missed else "all goals met")
        for line in missed:
            print("  " + line)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
