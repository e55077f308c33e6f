"""``zetta worker`` and ``zetta gc``: the remote-execution commands.

Register them on the main group with ``cli.add_command(worker)`` and ``cli.add_command(gc)``.
``python -m zetta_utils.cli.remote worker ...`` runs them without the main CLI (local test workers
are started that way).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["gc", "pod_worker_main", "remote_cli", "worker"]


@click.command("worker")
@click.option(
    "--join",
    "join_file",
    envvar="ZETTA_JOIN_FILE",
    type=click.Path(dir_okay=False),
    default=None,
    help="The run's join file, written by `zetta run` (queues, run id, key) [$ZETTA_JOIN_FILE].",
)
@click.option(
    "--queue",
    "queue",
    envvar="ZETTA_WORK_QUEUE",
    default=None,
    help="Work queue name or URL [$ZETTA_WORK_QUEUE].",
)
@click.option(
    "--outcome-queue",
    envvar="ZETTA_OUTCOME_QUEUE",
    default=None,
    help="Outcome queue name or URL [$ZETTA_OUTCOME_QUEUE].",
)
@click.option(
    "--run-id",
    envvar="ZETTA_RUN_ID",
    default=None,
    help="The run the worker serves [$ZETTA_RUN_ID].",
)
@click.option(
    "--key-file",
    envvar="ZETTA_RUN_KEY_FILE",
    type=click.Path(dir_okay=False),
    default=None,
    help=(
        "A file holding the run's message key "
        "[$ZETTA_RUN_KEY_FILE; else the join file's, else $ZETTA_RUN_KEY]."
    ),
)
@click.option("--region", default=None, help="SQS region [$AWS_DEFAULT_REGION, else us-east-1].")
@click.option(
    "--endpoint-url",
    default=None,
    help="SQS endpoint [$ZETTA_SQS_ENDPOINT, $AWS_ENDPOINT_URL_SQS, $AWS_ENDPOINT_URL].",
)
@click.option(
    "--visibility-timeout",
    "visibility_timeout_s",
    type=click.IntRange(min=2),
    default=None,
    envvar="ZETTA_VISIBILITY_TIMEOUT",
    help=(
        "Lease on a task message in seconds; renewed every third of it while the task runs "
        "[default: 60]."
    ),
)
@click.option(
    "--prefetch",
    type=click.IntRange(1, 10),
    default=None,
    help="Messages taken at once [default: 1].",
)
@click.option(
    "--max-idle-s",
    type=click.FloatRange(min=0),
    default=None,
    help="Exit after this long without work.",
)
@click.option(
    "--max-tasks", type=click.IntRange(min=1), default=None, help="Exit after this many messages."
)
def worker(
    join_file: str | None,
    queue: str | None,
    outcome_queue: str | None,
    run_id: str | None,
    key_file: str | None,
    region: str | None,
    endpoint_url: str | None,
    visibility_timeout_s: int | None,
    prefetch: int | None,
    max_idle_s: float | None,
    max_tasks: int | None,
) -> None:
    """Run tasks from a remote run's work queue until the queue is deleted.

    A worker started anywhere joins a run with `zetta worker --join FILE`, FILE being the join
    file the run wrote (its path is in the run's log): it holds the queues, the run id and the
    run's message key. Options given next to --join override the file's values.

    Without --join, --queue, --outcome-queue and --run-id are required and the run's message key
    comes from --key-file or $ZETTA_RUN_KEY (the producer puts it in the worker Deployment's
    Secret, or in the environment of local test workers). Messages not sealed with the key are
    refused and reported.
    """
    from zetta_utils.mazepa_addons.join import read_join_file
    from zetta_utils.mazepa_addons.local_workers import die_with_parent
    from zetta_utils.mazepa_addons.worker import run_worker
    from zetta_utils.message_queues.signing import MessageSigner, decode_key, key_from_env
    from zetta_utils.message_queues.sqs import SQSQueue

    die_with_parent()  # local test workers only (they carry their producer's pid)
    key: bytes | None = None
    try:
        if join_file is not None:
            info = read_join_file(join_file)
            queue, outcome_queue, run_id = (
                queue or info.work_queue,
                outcome_queue or info.outcome_queue,
                run_id or info.run_id,
            )
            region, endpoint_url = region or info.region, endpoint_url or info.endpoint
            visibility_timeout_s = visibility_timeout_s or info.visibility_timeout_s
            prefetch = prefetch or info.prefetch
            key = decode_key(info.key)
        missing = [
            f"--{n}"
            for n, v in (("queue", queue), ("outcome-queue", outcome_queue), ("run-id", run_id))
            if not v
        ]
        if missing:
            raise click.UsageError(
                f"{', '.join(missing)} required (or --join FILE, the run's join file)"
            )
        if key_file is not None:
            try:
                key = decode_key(Path(key_file).expanduser().read_text(encoding="utf-8"))
            except OSError as e:
                raise ValueError(f"--key-file {key_file}: {e}") from None
        if key is None:
            key = key_from_env()
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    assert queue and outcome_queue and run_id
    work = SQSQueue(queue, region_name=region, endpoint_url=endpoint_url)
    outcomes = SQSQueue(outcome_queue, region_name=region, endpoint_url=endpoint_url)
    run_worker(
        work,
        outcomes,
        MessageSigner(key, run_id),
        visibility_timeout_s=visibility_timeout_s or 60,
        prefetch=prefetch or 1,
        max_idle_s=max_idle_s,
        max_tasks=max_tasks,
    )


@click.command("gc")
@click.option(
    "--max-age-s",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="Collect runs whose heartbeat is older than this many seconds.",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@click.option(
    "--records",
    "location",
    envvar="ZETTA_RUN_RECORDS",
    default=None,
    help=(
        "Run records location (folder, s3://, gs://) "
        "[$ZETTA_RUN_RECORDS, else ~/.zetta_utils/runs]."
    ),
)
@click.option(
    "--kube-config",
    "kube_config_path",
    default=None,
    help="kubeconfig file (default ~/.kube/config).",
)
def gc(max_age_s: float, dry_run: bool, location: str | None, kube_config_path: str | None) -> None:
    """Delete queues and worker deployments of runs whose producer stopped beating."""
    from zetta_utils.cloud_management.gc import collect_garbage

    report = collect_garbage(
        max_age_s=max_age_s, dry_run=dry_run, location=location, kube_config_path=kube_config_path
    )
    for line in report.actions:
        click.echo(line)
    click.echo(
        f"{report.examined} run(s) examined, {len(report.alive)} alive, "
        + (f"{len(report.collected)} collected" if not dry_run else "dry run: nothing deleted")
    )
    for line in report.errors:
        click.echo(f"error: {line}", err=True)
    if report.errors:
        sys.exit(1)


@click.group("remote")
def remote_cli() -> None:
    """Remote execution commands."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


remote_cli.add_command(worker)
remote_cli.add_command(gc)


def pod_worker_main(worker_args: list[str], semaphores: dict[str, Any]) -> None:
    """One worker process of ``python -m zetta_utils.mazepa_addons.pod_workers``: ``zetta worker
    ARGS`` under the pod's shared semaphores."""
    from zetta_utils.mazepa.semaphores import install_semaphores

    install_semaphores(semaphores)
    remote_cli.main(args=["worker", *worker_args], prog_name="zetta")


if __name__ == "__main__":  # pragma: no cover
    remote_cli()
