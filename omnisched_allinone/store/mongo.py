"""The MongoDB store, on PyMongo's `AsyncMongoClient` or mongomock-motor's in-memory client.

Documents are marshalled here and nowhere else. Parameters and results are kept as JSON text:
client-supplied keys may contain dots or start with `$`, which MongoDB field names do not take
safely, and nothing queries inside them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from omnisched_allinone.core.errors import AlreadyExists, Conflict, NotFound, Unavailable
from omnisched_allinone.core.executions import (
    Execution,
    ExecutionError,
    ExecutionStatus,
    Trigger,
)
from omnisched_allinone.core.jobs import Job, JobCounters, JobStatus, JobType
from omnisched_allinone.core.policies import JobPolicies
from omnisched_allinone.core.schedules import ScheduleSpec
from omnisched_allinone.store.base import ExecutionEventRecord, ExecutionFilter, JobFilter

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
JOBS = "scheduled_jobs"
EXECUTIONS = "job_executions"
EVENTS = "execution_events"
LEASES = "leases"
SEQUENCES = "sequences"


def _utc(value: datetime | None) -> datetime | None:
    """BSON dates come back with bson's own UTC tzinfo (or naive): make them `datetime.UTC`."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ms(value: datetime | None) -> datetime | None:
    """MongoDB keeps milliseconds: truncate before writing so what we read equals what we wrote."""
    if value is None:
        return None
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


class _Guard:
    """Turns driver failures into `Unavailable`, so a store outage is a status, not a crash."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        # Returns None, not bool: it never swallows an error, and mypy then knows a `return`
        # inside `async with _guard:` always returns.
        if (
            exc is not None
            and isinstance(exc, PyMongoError)
            and not isinstance(exc, DuplicateKeyError)
        ):
            raise Unavailable(f"store unavailable: {type(exc).__name__}") from exc


_guard = _Guard()


# Jobs <-> documents.
def job_to_doc(job: Job) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": job.id,
        "name": job.name,
        "description": job.description,
        "job_type": str(job.job_type),
        "target_service": job.target_service,
        "target_method": job.target_method,
        "task_name": job.task_name,
        "parameters_json": json.dumps(dict(job.parameters)),
        "queue": job.queue,
        "schedule": {
            "type": job.schedule.type,
            "config": dict(job.schedule.config),
            "timezone": job.schedule.timezone,
        },
        "policies": {
            k: (str(v) if k == "overlap" else v) for k, v in job.policies.to_dict().items()
        },
        "labels": [{"k": k, "v": v} for k, v in sorted(job.labels.items())],
        "label_terms": sorted({*job.labels, *(f"{k}={v}" for k, v in job.labels.items())}),
        "status": str(job.status),
        "pause_note": job.pause_note,
        "built_in": job.built_in,
        "created_at": _ms(job.created_at),
        "updated_at": _ms(job.updated_at),
        "version": job.version,
        # Only an active job is in the next_run_at index, so the due query needs no status test.
        "next_run_at": _ms(job.next_run_at) if job.status == JobStatus.ACTIVE else None,
        "last_run_at": _ms(job.last_run_at),
        "counters": {f.name: getattr(job.counters, f.name) for f in fields(JobCounters)},
    }
    if doc["last_run_at"] is None:
        # Absent, not null: mongomock's `$max` cannot compare null with a date (TypeError).
        del doc["last_run_at"]
    return doc


def doc_to_job(doc: Mapping[str, Any]) -> Job:
    schedule = doc["schedule"]
    counters = doc.get("counters") or {}
    return Job(
        id=doc["_id"],
        name=doc["name"],
        description=doc.get("description", ""),
        job_type=JobType(doc["job_type"]),
        target_service=doc.get("target_service", ""),
        target_method=doc.get("target_method", ""),
        task_name=doc.get("task_name", ""),
        parameters=json.loads(doc.get("parameters_json") or "{}"),
        queue=doc["queue"],
        schedule=ScheduleSpec(
            type=schedule["type"],
            config=dict(schedule.get("config") or {}),
            timezone=schedule.get("timezone") or "UTC",
        ),
        policies=JobPolicies.from_dict(doc.get("policies") or {}),
        labels={item["k"]: item["v"] for item in doc.get("labels") or []},
        status=JobStatus(doc["status"]),
        pause_note=doc.get("pause_note", ""),
        built_in=bool(doc.get("built_in")),
        created_at=_utc(doc["created_at"]),  # type: ignore[arg-type]
        updated_at=_utc(doc["updated_at"]),  # type: ignore[arg-type]
        version=int(doc.get("version", 1)),
        next_run_at=_utc(doc.get("next_run_at")),
        last_run_at=_utc(doc.get("last_run_at")),
        counters=JobCounters(**{f.name: int(counters.get(f.name, 0)) for f in fields(JobCounters)}),
    )


# Executions <-> documents.
_EXECUTION_DATES = ("queued_at", "scheduled_for", "started_at", "finished_at", "updated_at")


def _execution_value(key: str, value: Any) -> tuple[str, Any]:
    """One execution field in document form (the name may change: result → result_json)."""
    if key in ("result", "parameters"):
        return f"{key}_json", None if value is None else json.dumps(value)
    if key == "error":
        return key, None if value is None else {
            "type": value.type,
            "message": value.message,
            "code": value.code,
        }
    if key in _EXECUTION_DATES:
        return key, _ms(value)
    if key in ("status", "trigger"):
        return key, str(value)
    return key, value


def execution_to_doc(execution: Execution) -> dict[str, Any]:
    doc = dict(_execution_value(f.name, getattr(execution, f.name)) for f in fields(Execution))
    doc["_id"] = doc.pop("id")
    return doc


def doc_to_execution(doc: Mapping[str, Any]) -> Execution:
    error = doc.get("error")
    result_json = doc.get("result_json")
    return Execution(
        id=doc["_id"],
        job_id=doc["job_id"],
        job_name=doc.get("job_name", ""),
        trigger=Trigger(doc["trigger"]),
        run_key=doc["run_key"],
        status=ExecutionStatus(doc["status"]),
        queue=doc.get("queue", ""),
        queued_at=_utc(doc["queued_at"]),  # type: ignore[arg-type]
        scheduled_for=_utc(doc.get("scheduled_for")),
        parameters=json.loads(doc.get("parameters_json") or "{}"),
        request_id=doc.get("request_id", ""),
        attempts=int(doc.get("attempts", 0)),
        deliveries=int(doc.get("deliveries", 0)),
        task_id=doc.get("task_id", ""),
        worker=doc.get("worker", ""),
        enqueued=bool(doc.get("enqueued")),
        started_at=_utc(doc.get("started_at")),
        finished_at=_utc(doc.get("finished_at")),
        duration_s=float(doc.get("duration_s", 0.0)),
        result=None if result_json is None else json.loads(result_json),
        error=ExecutionError(**error) if error else None,
        reason=doc.get("reason", ""),
        updated_at=_utc(doc.get("updated_at")),
    )


class MongoStore:
    """The `Store` contract on a MongoDB database (real or in-memory)."""

    def __init__(self, client: Any, database: str) -> None:
        self._client = client
        self._db = client[database]
        self._jobs = self._db[JOBS]
        self._executions = self._db[EXECUTIONS]
        self._events = self._db[EVENTS]
        self._leases = self._db[LEASES]
        self._sequences = self._db[SEQUENCES]
        self.change_listeners: list[Callable[[], None]] = []

    @property
    def database(self) -> Any:
        return self._db

    async def start(self) -> None:
        async with _guard:
            await self._jobs.create_index("name", unique=True)
            await self._jobs.create_index("next_run_at")
            await self._jobs.create_index([("job_type", ASCENDING), ("_id", ASCENDING)])
            await self._jobs.create_index("label_terms")
            await self._executions.create_index("run_key", unique=True)
            await self._executions.create_index([("job_id", ASCENDING), ("_id", DESCENDING)])
            await self._executions.create_index(
                [("status", ASCENDING), ("enqueued", ASCENDING), ("queued_at", ASCENDING)]
            )
            await self._executions.create_index("queued_at")
            # Not unique: the sequence's atomic $inc already makes each seq unique, and the
            # in-memory store checks a unique index by scanning the whole collection per insert.
            await self._events.create_index("seq")
            await self._events.create_index("at")

    async def ping(self) -> None:
        async with _guard:
            await self._db.command("ping")

    async def close(self) -> None:
        result = self._client.close()
        if hasattr(result, "__await__"):
            await result

    # Jobs.
    async def insert_job(self, job: Job) -> None:
        try:
            async with _guard:
                await self._jobs.insert_one(job_to_doc(job))
        except DuplicateKeyError:
            raise AlreadyExists(f"a job named {job.name!r} already exists") from None

    async def get_job(self, job_id: str) -> Job:
        async with _guard:
            doc = await self._jobs.find_one({"_id": job_id})
        if doc is None:
            raise NotFound(f"job {job_id!r} not found")
        return doc_to_job(doc)

    async def find_job_by_name(self, name: str) -> Job | None:
        async with _guard:
            doc = await self._jobs.find_one({"name": name})
        return None if doc is None else doc_to_job(doc)

    async def list_jobs(self, flt: JobFilter, limit: int, after_id: str | None) -> list[Job]:
        query: dict[str, Any] = {}
        if flt.job_type is not None:
            query["job_type"] = str(flt.job_type)
        if flt.status is not None:
            query["status"] = str(flt.status)
        if flt.queue is not None:
            query["queue"] = flt.queue
        if flt.label:
            query["label_terms"] = flt.label
        if flt.built_in is not None:
            query["built_in"] = flt.built_in
        if after_id is not None:
            query["_id"] = {"$gt": after_id}
        async with _guard:
            docs = await self._jobs.find(query).sort("_id", ASCENDING).limit(limit).to_list(None)
        return [doc_to_job(doc) for doc in docs]

    async def replace_job(self, job: Job, expected_version: int) -> Job:
        doc = job_to_doc(job)
        for maintained_elsewhere in ("_id", "counters", "last_run_at", "created_at"):
            doc.pop(maintained_elsewhere, None)
        try:
            async with _guard:
                updated = await self._jobs.find_one_and_update(
                    {"_id": job.id, "version": expected_version},
                    {"$set": doc},
                    return_document=ReturnDocument.AFTER,
                )
        except DuplicateKeyError:
            raise AlreadyExists(f"a job named {job.name!r} already exists") from None
        if updated is None:
            await self.get_job(job.id)  # NotFound if it was deleted meanwhile
            raise Conflict(f"job {job.id!r} changed since version {expected_version}")
        return doc_to_job(updated)

    async def delete_job(self, job_id: str) -> bool:
        async with _guard:
            result = await self._jobs.delete_one({"_id": job_id})
        return bool(result.deleted_count)

    async def increment_counters(
        self, job_id: str, counters: Mapping[str, int], last_run_at: datetime | None = None
    ) -> None:
        update: dict[str, Any] = {"$inc": {f"counters.{k}": v for k, v in counters.items() if v}}
        if last_run_at is not None:
            update["$max"] = {"last_run_at": _ms(last_run_at)}
        if not update["$inc"]:
            del update["$inc"]
        if update:
            async with _guard:
                await self._jobs.update_one({"_id": job_id}, update)

    # Scheduling.
    async def due_jobs(self, now: datetime, limit: int) -> list[Job]:
        async with _guard:
            docs = (
                await self._jobs.find({"next_run_at": {"$gte": EPOCH, "$lte": now}})
                .sort("next_run_at", ASCENDING)
                .limit(limit)
                .to_list(None)
            )
        return [doc_to_job(doc) for doc in docs if doc["status"] == JobStatus.ACTIVE]

    async def next_due_at(self) -> datetime | None:
        async with _guard:
            docs = (
                await self._jobs.find({"next_run_at": {"$gte": EPOCH}}, {"next_run_at": 1})
                .sort("next_run_at", ASCENDING)
                .limit(1)
                .to_list(None)
            )
        return _utc(docs[0]["next_run_at"]) if docs else None

    async def advance_job(
        self,
        job_id: str,
        expected_version: int,
        expected_next_run_at: datetime,
        changes: Mapping[str, Any],
    ) -> bool:
        values = {k: (_ms(v) if isinstance(v, datetime) else v) for k, v in changes.items()}
        if "status" in values:
            values["status"] = str(values["status"])
            if values["status"] != JobStatus.ACTIVE:
                values["next_run_at"] = None  # see job_to_doc: inactive jobs are never due
        async with _guard:
            result = await self._jobs.update_one(
                {
                    "_id": job_id,
                    "version": expected_version,
                    "next_run_at": _ms(expected_next_run_at),
                },
                {"$set": values},
            )
        return bool(result.modified_count)

    async def acquire_lease(self, name: str, owner: str, now: datetime, lease_s: float) -> bool:
        expires = _ms(datetime.fromtimestamp(now.timestamp() + lease_s, UTC))
        try:
            async with _guard:
                doc = await self._leases.find_one_and_update(
                    {"_id": name, "$or": [{"owner": owner}, {"expires_at": {"$lt": _ms(now)}}]},
                    {"$set": {"owner": owner, "expires_at": expires}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
        except DuplicateKeyError:
            return False  # another owner holds an unexpired lease: the upsert collided on _id
        return doc is not None and doc.get("owner") == owner

    async def release_lease(self, name: str, owner: str) -> None:
        async with _guard:
            await self._leases.delete_one({"_id": name, "owner": owner})

    async def lease_holder(self, name: str) -> tuple[str, datetime] | None:
        """Who holds the named lease and until when (None when nobody ever took it or it was
        released); for health checks, which must not take the lease themselves."""
        async with _guard:
            doc = await self._leases.find_one({"_id": name})
        if doc is None:
            return None
        expires = doc["expires_at"]
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return str(doc["owner"]), expires

    async def count_jobs_by_status(self) -> dict[str, int]:
        """Number of jobs per status (one count per status; the metrics gauge reads it)."""
        counts: dict[str, int] = {}
        for status in JobStatus:
            async with _guard:
                counts[str(status)] = int(await self._jobs.count_documents({"status": str(status)}))
        return counts

    # Markers: facts recorded once (e.g. "this built-in job was seeded").
    async def has_marker(self, key: str) -> bool:
        async with _guard:
            return await self._sequences.find_one({"_id": f"marker:{key}"}) is not None

    async def set_marker(self, key: str) -> None:
        async with _guard:
            await self._sequences.update_one(
                {"_id": f"marker:{key}"}, {"$set": {"at": _ms(datetime.now(UTC))}}, upsert=True
            )

    # Executions.
    async def insert_execution(self, execution: Execution) -> bool:
        try:
            async with _guard:
                await self._executions.insert_one(execution_to_doc(execution))
        except DuplicateKeyError:
            return False
        await self._record_event(execution)
        return True

    async def get_execution(self, execution_id: str) -> Execution:
        async with _guard:
            doc = await self._executions.find_one({"_id": execution_id})
        if doc is None:
            raise NotFound(f"execution {execution_id!r} not found")
        return doc_to_execution(doc)

    async def find_execution_by_run_key(self, run_key: str) -> Execution | None:
        async with _guard:
            doc = await self._executions.find_one({"run_key": run_key})
        return None if doc is None else doc_to_execution(doc)

    async def update_execution(
        self,
        execution_id: str,
        changes: Mapping[str, Any],
        *,
        only_if_status_in: frozenset[ExecutionStatus] | None = None,
    ) -> Execution | None:
        query: dict[str, Any] = {"_id": execution_id}
        if only_if_status_in is not None:
            query["status"] = {"$in": [str(s) for s in only_if_status_in]}
        values = dict(_execution_value(k, v) for k, v in changes.items())
        async with _guard:
            doc = await self._executions.find_one_and_update(
                query, {"$set": values}, return_document=ReturnDocument.AFTER
            )
        if doc is None:
            return None
        execution = doc_to_execution(doc)
        if "status" in changes:
            await self._record_event(execution)
        return execution

    async def list_executions(
        self, flt: ExecutionFilter, limit: int, before_id: str | None
    ) -> list[Execution]:
        query = self._execution_query(flt)
        if before_id is not None:
            query["_id"] = {"$lt": before_id}
        async with _guard:
            docs = (
                await self._executions.find(query)
                .sort("_id", DESCENDING)
                .limit(limit)
                .to_list(None)
            )
        return [doc_to_execution(doc) for doc in docs]

    async def count_executions(
        self, flt: ExecutionFilter, statuses: frozenset[ExecutionStatus]
    ) -> int:
        query = self._execution_query(flt)
        query["status"] = {"$in": [str(s) for s in statuses]}
        async with _guard:
            return int(await self._executions.count_documents(query))

    async def unpublished_executions(self, older_than: datetime, limit: int) -> list[Execution]:
        async with _guard:
            docs = (
                await self._executions.find(
                    {
                        "status": str(ExecutionStatus.PENDING),
                        "enqueued": False,
                        "queued_at": {"$lt": _ms(older_than)},
                    }
                )
                .sort("queued_at", ASCENDING)
                .limit(limit)
                .to_list(None)
            )
        return [doc_to_execution(doc) for doc in docs]

    async def delete_executions_before(self, cutoff: datetime) -> int:
        async with _guard:
            result = await self._executions.delete_many(
                {
                    "queued_at": {"$lt": _ms(cutoff)},
                    "status": {"$nin": [str(s) for s in ("PENDING", "STARTED", "RETRY")]},
                }
            )
            await self._events.delete_many({"at": {"$lt": _ms(cutoff)}})
        return int(result.deleted_count)

    # Execution events: a dense sequence, so a reader can tell "nothing new" from "not yet
    # visible" (a gap) when several processes write.
    async def _record_event(self, execution: Execution) -> None:
        async with _guard:
            counter = await self._sequences.find_one_and_update(
                {"_id": EVENTS},
                {"$inc": {"value": 1}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            doc = execution_to_doc(execution)
            await self._events.insert_one(
                {
                    "seq": int(counter["value"]),
                    "at": _ms(datetime.now(UTC)),
                    "job_id": execution.job_id,
                    "execution": doc,
                }
            )
        for listener in self.change_listeners:
            listener()

    async def events_after(
        self, seq: int | None, job_id: str | None, limit: int
    ) -> list[ExecutionEventRecord]:
        query: dict[str, Any] = {}
        if seq is not None:
            query["seq"] = {"$gt": seq}
        if job_id:
            query["job_id"] = job_id
        async with _guard:
            docs = await self._events.find(query).sort("seq", ASCENDING).limit(limit).to_list(None)
        return [
            ExecutionEventRecord(
                seq=int(doc["seq"]),
                at=_utc(doc["at"]),  # type: ignore[arg-type]
                execution=doc_to_execution(doc["execution"]),
            )
            for doc in docs
        ]

    async def last_event_seq(self) -> int:
        async with _guard:
            doc = await self._sequences.find_one({"_id": EVENTS})
        return int(doc["value"]) if doc else 0

    def _execution_query(self, flt: ExecutionFilter) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if flt.job_id:
            query["job_id"] = flt.job_id
        if flt.status is not None:
            query["status"] = str(flt.status)
        if flt.trigger is not None:
            query["trigger"] = str(flt.trigger)
        return query


def open_store(url: str, database: str, *, timeout_ms: int = 3000) -> MongoStore:
    """A store on `url`: `memory://` is the in-memory MongoDB of dev mode and tests."""
    if url.startswith("memory://"):
        from mongomock_motor import AsyncMongoMockClient

        return MongoStore(AsyncMongoMockClient(tz_aware=True), database)
    from pymongo import AsyncMongoClient

    client: Any = AsyncMongoClient(
        url,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        appname="omnisched",
    )
    return MongoStore(client, database)
