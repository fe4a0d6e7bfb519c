"""`omnisched jobs …`: manage jobs on a running server through its gRPC API.

Human output is rich tables with times in UTC; `--json` prints the proto JSON mapping instead (one
document per command, one line per event for `watch`), for scripts. Every API error becomes one
line on stderr and a documented exit code; a user's mistake never shows a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import IO, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import grpc
from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from omnisched_allinone.client import (
    DEFAULT_SERVER,
    ApiError,
    SchedulerClient,
    TlsFiles,
)
from omnisched_allinone.proto import scheduler_service_pb2 as pb

F = TypeVar("F", bound=Callable[..., Any])


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    UNAVAILABLE = 3
    NOT_FOUND = 4
    INVALID_ARGUMENT = 5
    API_ERROR = 6


EXIT_CODES_HELP = """\b
Exit codes:
  0  ok
  1  failed: the run did not end in SUCCESS (run --wait), or a confirmation was declined
  2  usage: bad options or arguments
  3  unavailable: the server did not answer (down, wrong --server, or --timeout passed)
  4  not found: no such job or execution
  5  invalid argument: the server refused a field (the message names it)
  6  any other API error (ALREADY_EXISTS, ABORTED, FAILED_PRECONDITION, ...)
"""

_STATUS_STYLES = {
    "ACTIVE": "green",
    "PAUSED": "yellow",
    "COMPLETED": "dim",
    "SUCCESS": "green",
    "FAILURE": "red",
    "TIMED_OUT": "red",
    "REVOKED": "red",
    "SKIPPED": "yellow",
    "MISSED": "yellow",
    "PENDING": "cyan",
    "STARTED": "cyan",
    "RETRY": "cyan",
}


class CliError(click.ClickException):
    """A failure reported as one `error: …` line on stderr with a named exit code."""

    def __init__(self, message: str, exit_code: ExitCode) -> None:
        super().__init__(message)
        # Click declares exit_code a ClassVar; one class with a per-error code reads better here.
        self.exit_code = exit_code  # type: ignore[misc]

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


@dataclass(frozen=True)
class Session:
    client: SchedulerClient
    as_json: bool

    def emit(self, message: Message, render: Callable[[], None]) -> None:
        """One JSON document for scripts, or the human rendering."""
        if self.as_json:
            click.echo(json.dumps(_to_dict(message), indent=2))
        else:
            render()


def _to_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _api_failure(error: ApiError, server: str, timeout_s: float) -> CliError:
    code = error.code
    if code is grpc.StatusCode.UNAVAILABLE:
        return CliError(
            f"UNAVAILABLE: the server at {server} did not answer ({error.message})",
            ExitCode.UNAVAILABLE,
        )
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return CliError(
            f"DEADLINE_EXCEEDED: the server at {server} did not answer within {timeout_s:g}s",
            ExitCode.UNAVAILABLE,
        )
    if code is grpc.StatusCode.NOT_FOUND:
        return CliError(f"NOT_FOUND: {error.message}", ExitCode.NOT_FOUND)
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        message = error.message
        if error.field and not message.startswith(f"{error.field}:"):
            message = f"{error.field}: {message}"
        return CliError(f"INVALID_ARGUMENT: {message}", ExitCode.INVALID_ARGUMENT)
    return CliError(f"{code.name}: {error.message}", ExitCode.API_ERROR)


class _JobsGroup(click.Group):
    """Turns the client's `ApiError` into a `CliError` for every subcommand, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ApiError as error:
            client = ctx.obj.client if isinstance(ctx.obj, Session) else None
            server = client.server if client else "?"
            timeout_s = client.timeout_s if client else 0.0
            raise _api_failure(error, server, timeout_s) from None


@click.group(cls=_JobsGroup, epilog=EXIT_CODES_HELP)
@click.option(
    "--server",
    envvar="OMNISCHED_SERVER",
    default=DEFAULT_SERVER,
    show_default=True,
    show_envvar=True,
    help="The API's host:port.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the proto JSON mapping, for scripts.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds to wait for each call (not for watch streams).",
)
@click.option(
    "--token",
    envvar="OMNISCHED_TOKEN",
    default="",
    show_envvar=True,
    help="Sent as `authorization: Bearer TOKEN` call metadata.",
)
@click.option(
    "--tls-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM CA bundle to trust; any --tls-* option switches to TLS.",
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM client certificate (mutual TLS; needs --tls-key).",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM client private key (mutual TLS; needs --tls-cert).",
)
@click.pass_context
def jobs(
    ctx: click.Context,
    server: str,
    as_json: bool,
    timeout_s: float,
    token: str,
    tls_ca: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
) -> None:
    """Manage the jobs of a running omnisched server (gRPC API).

    \b
    Examples:
      omnisched jobs list --status ACTIVE
      omnisched jobs create --name prices --type SCRAPING --target scraper-service \\
          --method ScrapeCompetitorPrices --cron '*/5 * * * *' --param competitor_ids='["a"]'
      omnisched jobs run job-123 --wait
      omnisched jobs --json history --all --status FAILURE --limit 5
    """
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together (mutual TLS)")
    tls = TlsFiles(tls_ca, tls_cert, tls_key) if tls_ca or tls_cert else None
    client = SchedulerClient(server, timeout_s=timeout_s, token=token, tls=tls)
    ctx.call_on_close(client.close)
    ctx.obj = Session(client, as_json)


pass_session = click.make_pass_decorator(Session)


# Parsing options.
def _pairs(values: Iterable[str], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint=option)
        pairs[key] = rest
    return pairs


def _json_value(text: str) -> Any:
    """JSON when it parses (`5`, `true`, `["a"]`), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parameters(params: Iterable[str], params_json: str | None) -> dict[str, Any] | None:
    """--params-json, then each --param over it; None when neither was given."""
    pairs = _pairs(params, "--param")
    if params_json is None and not pairs:
        return None
    merged: dict[str, Any] = {}
    if params_json is not None:
        try:
            merged = json.loads(params_json)
        except ValueError as error:
            raise click.BadParameter(f"not JSON: {error}", param_hint="--params-json") from None
        if not isinstance(merged, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--params-json")
    merged.update({key: _json_value(value) for key, value in pairs.items()})
    return merged


def _struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(dict(values))
    return struct


def _instant(value: str, option: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time", param_hint=option) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _schedule(
    cron: str | None,
    every: int | None,
    period: str | None,
    start_at: str | None,
    at: str | None,
) -> pb.ScheduleConfig | None:
    """The schedule the options describe, without time zone; None when none was given."""
    given = [name for name, value in (("--cron", cron), ("--every", every), ("--at", at)) if value]
    if len(given) > 1:
        raise click.UsageError(f"choose one schedule: {' and '.join(given)} were both given")
    if every is None and (period or start_at):
        raise click.UsageError("--period and --start-at describe an --every schedule")
    if cron:
        return pb.ScheduleConfig(type="cron", config={"expression": cron})
    if every is not None:
        config = {"every": str(every)}
        if period:
            config["period"] = period
        if start_at:
            config["start_at"] = start_at
        return pb.ScheduleConfig(type="interval", config=config)
    if at:
        return pb.ScheduleConfig(type="once", config={"run_at": at})
    return None


def _schedule_options(func: F) -> F:
    for option in reversed(
        [
            click.option("--cron", metavar="EXPR", help="Cron expression (5 fields)."),
            click.option(
                "--every", type=click.IntRange(min=1), help="Interval schedule: every N periods."
            ),
            click.option(
                "--period",
                type=click.Choice(["seconds", "minutes", "hours", "days"]),
                help="The unit of --every (the server's default: seconds).",
            ),
            click.option("--start-at", metavar="ISO", help="When the --every intervals start."),
            click.option("--at", metavar="ISO", help="Run once at this time."),
            click.option(
                "--timezone", metavar="IANA", help="Time zone of the schedule (default UTC)."
            ),
        ]
    ):
        func = option(func)
    return func


def _job_options(*, for_update: bool) -> Callable[[F], F]:
    """The job fields as options; on update only the options given are sent."""
    fields = [
        click.option("--name"),
        click.option("--description"),
        *([] if for_update else [click.option("--type", "job_type", help="e.g. SCRAPING, TASK.")]),
        click.option("--target", "target_service", help="A service from the server's registry."),
        click.option("--method", "target_method", help="The gRPC method of the target."),
        click.option("--task", "task_name", help="The Celery task of a TASK job."),
        _schedule_options,
        click.option(
            "--param",
            "params",
            multiple=True,
            metavar="KEY=VALUE",
            help="A parameter; VALUE is JSON when it parses, else a string. Repeatable."
            + (" Replaces all parameters." if for_update else ""),
        ),
        click.option("--params-json", metavar="JSON", help="Parameters as a JSON object."),
        click.option("--queue"),
        click.option(
            "--label",
            "labels",
            multiple=True,
            metavar="KEY=VALUE",
            help="Repeatable." + (" Replaces all labels." if for_update else ""),
        ),
        click.option("--max-retries", type=click.IntRange(min=0)),
        click.option(
            "--timeout-s",
            "time_limit_s",
            type=click.IntRange(min=1),
            help="Hard time limit of a run (policies.time_limit_s); must not be below the soft "
            "limit (server default 1500s).",
        ),
        click.option(
            "--soft-timeout-s",
            "soft_time_limit_s",
            type=click.IntRange(min=1),
            help="Soft time limit of a run (policies.soft_time_limit_s).",
        ),
        click.option("--overlap", type=click.Choice(["SKIP", "ALLOW"], case_sensitive=False)),
        click.option("--catchup-window-s", type=click.IntRange(min=0)),
        click.option("--jitter-s", type=click.IntRange(min=0)),
    ]

    def decorate(func: F) -> F:
        for option in reversed(fields):
            func = option(func)
        return func

    return decorate


_POLICY_OPTIONS = (
    "max_retries",
    "time_limit_s",
    "soft_time_limit_s",
    "overlap",
    "catchup_window_s",
    "jitter_s",
)


def _policies(options: Mapping[str, Any]) -> pb.JobPolicies | None:
    given = {name: options[name] for name in _POLICY_OPTIONS if options[name] is not None}
    if "overlap" in given:
        given["overlap"] = given["overlap"].upper()
    return pb.JobPolicies(**given) if given else None


def _with_timezone(
    schedule: pb.ScheduleConfig | None, timezone: str | None, base: pb.ScheduleConfig | None
) -> pb.ScheduleConfig | None:
    """`--timezone` applies to the schedule given, or else to `base` (from --from-file)."""
    if timezone is None:
        return schedule
    target = schedule or base
    if target is None:
        raise click.UsageError("--timezone needs a schedule: --cron, --every or --at")
    target.timezone = timezone
    return target


# Rendering.
def _console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = 200  # piped or captured: do not wrap ids at 80 columns
    return console


def _time(value: timestamp_pb2.Timestamp) -> str:
    return value.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(message: Message, field: str) -> str:
    return _time(getattr(message, field)) if message.HasField(field) else "-"


def _status(value: str) -> Text:
    return Text(value or "-", style=_STATUS_STYLES.get(value, ""))


def _plain(value: Any) -> Any:
    """Struct numbers are doubles; show 5 rather than 5.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _compact_json(struct: struct_pb2.Struct) -> str:
    return json.dumps(_plain(json_format.MessageToDict(struct)), sort_keys=True)


def _counters(counters: pb.JobCounters) -> str:
    return (
        f"runs {counters.runs} · ok {counters.successes} · failed {counters.failures} · "
        f"skipped {counters.skipped} · missed {counters.missed}"
    )


def _details(rows: Iterable[tuple[str, str | Text]]) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, value if isinstance(value, Text) else Text(value))
    return table


def _job_details(job: pb.ScheduledJob) -> Table:
    config = job.schedule_config
    target = f"{job.target_service}.{job.target_method}" if job.target_service else ""
    policies = json_format.MessageToDict(job.policies, preserving_proto_field_name=True)
    status = _status(job.status)
    if job.pause_note:
        status.append(f" ({job.pause_note})", style="")
    rows: list[tuple[str, str | Text]] = [
        ("id", job.id),
        ("name", job.name),
        ("description", job.description or "-"),
        ("type", job.job_type),
        ("target", target or (f"task {job.task_name}" if job.task_name else "-")),
        ("queue", job.queue),
        ("status", status),
        ("schedule", job.schedule_description),
        (
            "schedule config",
            f"{config.type} "
            + " ".join(f"{key}={value}" for key, value in sorted(config.config.items()))
            + f" ({config.timezone or 'UTC'})",
        ),
        ("parameters", _compact_json(job.parameters)),
        ("policies", " ".join(f"{key}={value}" for key, value in sorted(policies.items()))),
        ("labels", ", ".join(f"{k}={v}" for k, v in sorted(job.labels.items())) or "-"),
        ("next run", _when(job, "next_run_at")),
        ("last run", _when(job, "last_run_at")),
        ("counters", _counters(job.counters)),
        ("version", str(job.version)),
        ("created", _when(job, "created_at")),
        ("updated", _when(job, "updated_at")),
    ]
    if job.built_in:
        rows.append(("built in", "yes"))
    return _details(rows)


def _jobs_table(jobs: Iterable[pb.ScheduledJob]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header in ("ID", "NAME", "TYPE", "STATUS", "SCHEDULE", "NEXT RUN", "LAST RUN"):
        table.add_column(header, no_wrap=header in ("ID", "NEXT RUN", "LAST RUN"))
    for header in ("RUNS", "OK", "FAIL", "SKIP", "MISS"):
        table.add_column(header, justify="right")
    for job in jobs:
        c = job.counters
        table.add_row(
            Text(job.id),
            Text(job.name),
            Text(job.job_type),
            _status(job.status),
            Text(job.schedule_description),
            _when(job, "next_run_at"),
            _when(job, "last_run_at"),
            *(str(n) for n in (c.runs, c.successes, c.failures, c.skipped, c.missed)),
        )
    return table


def _outcome(execution: pb.JobExecution) -> str:
    if execution.HasField("error") and (execution.error.type or execution.error.message):
        return f"{execution.error.type}: {execution.error.message}".strip(": ")
    return execution.reason


def _executions_table(executions: Iterable[pb.JobExecution]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header in ("ID", "JOB", "TRIGGER", "STATUS", "SCHEDULED FOR", "QUEUED", "FINISHED"):
        table.add_column(header, no_wrap=header != "JOB")
    table.add_column("DURATION", justify="right")
    table.add_column("TRIES", justify="right")
    table.add_column("ERROR / REASON", overflow="fold")
    for execution in executions:
        table.add_row(
            Text(execution.id),
            Text(execution.job_name or execution.job_id),
            execution.trigger,
            _status(execution.status),
            _when(execution, "scheduled_for"),
            _when(execution, "queued_at"),
            _when(execution, "finished_at"),
            f"{execution.duration_s:.2f}s" if execution.HasField("finished_at") else "-",
            str(execution.attempts),
            Text(_outcome(execution)),
        )
    return table


def _event_line(event: pb.ExecutionEvent) -> str:
    execution = event.execution
    at = _time(event.at) if event.HasField("at") else "-"
    status = click.style(execution.status, fg=_STATUS_STYLES.get(execution.status))
    status += " " * (9 - len(execution.status))
    outcome = _outcome(execution)
    line = (
        f"{at}  {execution.id}  {execution.job_id} ({execution.job_name})  "
        f"{execution.trigger:<9}  {status}  {outcome}"
    )
    return line.rstrip()


def _print(renderable: Table | Text | str) -> None:
    _console().print(renderable)


# Commands.
@jobs.command("list")
@click.option("--type", "job_type", default="", help="Only jobs of this type.")
@click.option("--status", default="", help="ACTIVE, PAUSED or COMPLETED.")
@click.option("--queue", default="")
@click.option("--label", default="", metavar="KEY[=VALUE]", help="Jobs with this label.")
@click.option("--page-size", type=click.IntRange(1, 500), default=None, help="Server default 50.")
@click.option("--page-token", default="", help="Continue a previous listing.")
@click.option("--all", "follow", is_flag=True, help="Follow every page.")
@pass_session
def list_jobs(
    session: Session,
    job_type: str,
    status: str,
    queue: str,
    label: str,
    page_size: int | None,
    page_token: str,
    follow: bool,
) -> None:
    """List jobs, ordered by id."""
    request = pb.ListScheduledJobsRequest(
        job_type=job_type.upper(),
        status=status.upper(),
        queue=queue,
        label=label,
        page_size=page_size or 0,
        page_token=page_token,
    )
    client = session.client
    answer = client.list_all_jobs(request) if follow else client.list_jobs(request)

    def render() -> None:
        table = _jobs_table(answer.jobs)
        table.caption = f"{len(answer.jobs)} job(s)" + (
            f"; more with --all or --page-token {answer.next_page_token}"
            if answer.next_page_token
            else ""
        )
        _print(table)

    session.emit(answer, render)


@jobs.command()
@click.argument("job_id")
@pass_session
def get(session: Session, job_id: str) -> None:
    """Show one job."""
    job = session.client.get_job(job_id)
    session.emit(job, lambda: _print(_job_details(job)))


def _load_create_request(source: IO[str] | None) -> pb.CreateScheduledJobRequest:
    request = pb.CreateScheduledJobRequest()
    if source is None:
        return request
    try:
        json_format.Parse(source.read(), request)
    except json_format.ParseError as error:
        raise click.BadParameter(
            f"not a CreateScheduledJobRequest in proto JSON: {error}", param_hint="--from-file"
        ) from None
    return request


@jobs.command()
@_job_options(for_update=False)
@click.option("--paused", is_flag=True, help="Create the job paused.")
@click.option(
    "--from-file",
    type=click.File("r"),
    help="A CreateScheduledJobRequest in proto JSON ('-' reads stdin); options override it.",
)
@pass_session
def create(session: Session, from_file: IO[str] | None, **options: Any) -> None:
    """Create a job.

    \b
    Example:
      omnisched jobs create --name nightly-report --type TASK --task reports.build \\
          --cron '0 2 * * *' --timezone Europe/Berlin --param days=7 --label team=data
    """
    request = _load_create_request(from_file)
    _apply_job_options(request, options)
    if options["paused"]:
        request.paused = True
    job = session.client.create_job(request)

    def render() -> None:
        click.echo(f"job created: {job.id}")
        _print(_job_details(job))

    session.emit(job, render)


@jobs.command()
@click.argument("job_id")
@_job_options(for_update=True)
@click.option(
    "--expected-version",
    type=int,
    help="Apply only if the job is still at this version (else ABORTED, exit 6).",
)
@pass_session
def update(session: Session, job_id: str, expected_version: int | None, **options: Any) -> None:
    """Change the fields given; the others keep their values.

    A schedule option replaces the whole schedule; policies merge field by field.
    """
    request = pb.UpdateScheduledJobRequest(job_id=job_id)
    _apply_job_options(request, options)
    if request.ByteSize() == pb.UpdateScheduledJobRequest(job_id=job_id).ByteSize():
        raise click.UsageError("nothing to update: give at least one field option")
    if expected_version is not None:
        request.expected_version = expected_version
    job = session.client.update_job(request)

    def render() -> None:
        click.echo(f"job updated: {job.id} (version {job.version})")
        _print(_job_details(job))

    session.emit(job, render)


def _apply_job_options(
    request: pb.CreateScheduledJobRequest | pb.UpdateScheduledJobRequest, options: dict[str, Any]
) -> None:
    """Set the fields whose option was given, over what `request` already holds."""
    for name in ("name", "description", "target_service", "target_method", "task_name", "queue"):
        if options[name] is not None:
            setattr(request, name, options[name])
    if options.get("job_type") is not None:
        assert isinstance(request, pb.CreateScheduledJobRequest)
        request.job_type = options["job_type"].upper()
    schedule = _schedule(
        options["cron"], options["every"], options["period"], options["start_at"], options["at"]
    )
    base = request.schedule_config if request.HasField("schedule_config") else None
    schedule = _with_timezone(schedule, options["timezone"], base)
    if schedule is not None:
        request.schedule_config.CopyFrom(schedule)
    parameters = _parameters(options["params"], options["params_json"])
    if parameters is not None:
        if isinstance(request, pb.UpdateScheduledJobRequest):
            request.parameters.Clear()
            request.parameters.SetInParent()
        request.parameters.update(parameters)
    policies = _policies(options)
    if policies is not None:
        request.policies.MergeFrom(policies)
    labels = _pairs(options["labels"], "--label")
    if labels:
        if isinstance(request, pb.UpdateScheduledJobRequest):
            request.labels.values.update(labels)
        else:
            request.labels.update(labels)


@jobs.command()
@click.argument("job_id")
@click.option("--note", default="", help="Why; shown with the job until it is resumed.")
@pass_session
def pause(session: Session, job_id: str, note: str) -> None:
    """Pause a job: it does not fire until resumed."""
    job = session.client.pause_job(job_id, note)
    session.emit(job, lambda: click.echo(f"job paused: {job.id}" + (f" ({note})" if note else "")))


@jobs.command()
@click.argument("job_id")
@pass_session
def resume(session: Session, job_id: str) -> None:
    """Resume a paused job at its next future fire time (the paused period is not replayed)."""
    job = session.client.resume_job(job_id)
    session.emit(
        job, lambda: click.echo(f"job resumed: {job.id}; next run {_when(job, 'next_run_at')}")
    )


def _stdin_is_interactive() -> bool:
    return sys.stdin.isatty()


@jobs.command()
@click.argument("job_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask; required when stdin is no terminal.")
@pass_session
def delete(session: Session, job_id: str, yes: bool) -> None:
    """Delete a job (its past executions stay until retention removes them)."""
    if not yes:
        if not _stdin_is_interactive():
            raise CliError(
                f"not deleting job {job_id!r} without confirmation: stdin is not a terminal; "
                "pass --yes",
                ExitCode.USAGE,
            )
        job = session.client.get_job(job_id)
        if not click.confirm(f"Delete job {job.id} ({job.name})?", err=True):
            click.echo("not deleted", err=True)
            click.get_current_context().exit(ExitCode.FAILED)
    answer = session.client.delete_job(job_id)
    session.emit(answer, lambda: click.echo(f"job deleted: {answer.job_id}"))


@jobs.command()
@click.argument("job_id")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Overrides a parameter for this run only; VALUE is JSON when it parses. Repeatable.",
)
@click.option("--params-json", metavar="JSON", help="Overrides as a JSON object.")
@click.option("--request-id", default="", help="Idempotency key: the same id returns the same run.")
@click.option(
    "--wait", is_flag=True, help="Follow the run until it ends; exit 1 unless it succeeded."
)
@click.option(
    "--wait-timeout",
    "wait_timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    help="Give up waiting after this many seconds (exit 1).",
)
@pass_session
def run(
    session: Session,
    job_id: str,
    params: tuple[str, ...],
    params_json: str | None,
    request_id: str,
    wait: bool,
    wait_timeout_s: float | None,
) -> None:
    """Run a job once now, on the `manual` queue."""
    request = pb.ExecuteJobRequest(job_id=job_id, request_id=request_id)
    overrides = _parameters(params, params_json)
    if overrides is not None:
        request.parameters.CopyFrom(_struct(overrides))
    answer = session.client.execute_now(request)
    if not session.as_json:
        click.echo(
            f"run enqueued: execution {answer.execution_id} of {answer.job_id} "
            f"(task {answer.task_id or '-'})"
        )
    if not wait:
        session.emit(answer, lambda: None)
        return

    def show(execution: pb.JobExecution) -> None:
        if not session.as_json:
            outcome = _outcome(execution)
            click.echo(f"{execution.id} {execution.status}" + (f": {outcome}" if outcome else ""))

    try:
        final = session.client.wait_for_execution(
            answer.execution, on_change=show, timeout_s=wait_timeout_s
        )
    except TimeoutError as error:
        raise CliError(str(error), ExitCode.FAILED) from None
    answer.execution.CopyFrom(final)
    session.emit(answer, lambda: None)
    if final.status != "SUCCESS":
        click.get_current_context().exit(ExitCode.FAILED)


@jobs.command()
@click.argument("job_id")
@click.option(
    "--next",
    "next_runs",
    type=click.IntRange(1, 100),
    default=5,
    show_default=True,
    help="How many upcoming fire times to show.",
)
@pass_session
def status(session: Session, job_id: str, next_runs: int) -> None:
    """A job's state: upcoming fire times, the last run, counters."""
    answer = session.client.job_status(job_id, next_runs)

    def render() -> None:
        state = _status(answer.status)
        if answer.pause_note:
            state.append(f" ({answer.pause_note})", style="")
        last = answer.last_execution
        rows: list[tuple[str, str | Text]] = [
            ("job", f"{answer.job_id} ({answer.name})"),
            ("status", state),
            ("schedule", answer.schedule_description),
            ("next runs", "\n".join(_time(t) for t in answer.next_run_times) or "-"),
            ("last run", _when(answer, "last_run_at")),
            (
                "last execution",
                f"{last.id} {last.status} {_outcome(last)}".strip()
                if answer.HasField("last_execution")
                else "-",
            ),
            ("active executions", str(answer.active_executions)),
            ("counters", _counters(answer.counters)),
        ]
        _print(_details(rows))

    session.emit(answer, render)


@jobs.command()
@click.argument("job_id", required=False)
@click.option("--all", "every_job", is_flag=True, help="Executions of every job.")
@click.option("--status", default="", help="e.g. FAILURE, SUCCESS, STARTED.")
@click.option("--trigger", default="", help="SCHEDULED, MANUAL or BACKFILL.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@pass_session
def history(
    session: Session,
    job_id: str | None,
    every_job: bool,
    status: str,
    trigger: str,
    limit: int,
) -> None:
    """Past and running executions, newest first: of JOB_ID, or of every job with --all."""
    if bool(job_id) == every_job:
        raise click.UsageError("give a JOB_ID or --all (one of them)")
    request = pb.ListJobExecutionsRequest(
        job_id=job_id or "", status=status.upper(), trigger=trigger.upper()
    )
    answer = session.client.list_executions(request, limit)

    def render() -> None:
        table = _executions_table(answer.executions)
        table.caption = f"{len(answer.executions)} execution(s)" + (
            " (older ones exist: raise --limit)" if answer.next_page_token else ""
        )
        _print(table)

    session.emit(answer, render)


@jobs.command()
@click.argument("job_id", required=False, default="")
@click.option(
    "--max-events",
    type=click.IntRange(min=1),
    help="Exit after this many events (for scripts and tests).",
)
@pass_session
def watch(session: Session, job_id: str, max_events: int | None) -> None:
    """Print execution state changes as they happen (of JOB_ID, or of every job) until Ctrl-C.

    With --json, one ExecutionEvent JSON document per line.
    """
    seen = 0
    stream = session.client.watch(job_id)
    try:
        for event in stream:
            if session.as_json:
                click.echo(json.dumps(_to_dict(event)))
            else:
                click.echo(_event_line(event))
            seen += 1
            if max_events is not None and seen >= max_events:
                break
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a watch ends
    finally:
        stream.close()


@jobs.command()
@_schedule_options
@click.option("--count", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option(
    "--after", metavar="ISO", help="Fire times after this time (default now; UTC if naive)."
)
@pass_session
def preview(
    session: Session,
    cron: str | None,
    every: int | None,
    period: str | None,
    start_at: str | None,
    at: str | None,
    timezone: str | None,
    count: int,
    after: str | None,
) -> None:
    """The next fire times of a schedule, to check it before creating a job with it."""
    schedule = _with_timezone(_schedule(cron, every, period, start_at, at), timezone, None)
    if schedule is None:
        raise click.UsageError("give a schedule: --cron, --every or --at")
    request = pb.PreviewScheduleRequest(schedule_config=schedule, count=count)
    if after is not None:
        request.after.FromDatetime(_instant(after, "--after"))
    answer = session.client.preview(request)

    def render() -> None:
        zone = answer.schedule_config.timezone or "UTC"
        click.echo(f"{answer.description}")
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        table.add_column("#", justify="right")
        table.add_column("UTC", no_wrap=True)
        local = zone != "UTC" and _zone(zone)
        if local:
            table.add_column(zone, no_wrap=True)
        for index, fire_time in enumerate(answer.fire_times, 1):
            cells = [str(index), _time(fire_time)]
            if local:
                cells.append(fire_time.ToDatetime(tzinfo=UTC).astimezone(local).isoformat())
            table.add_row(*cells)
        _print(table)

    session.emit(answer, render)


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
