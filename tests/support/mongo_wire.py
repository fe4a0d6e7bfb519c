"""A MongoDB wire-protocol server backed by mongomock, for tests only.

Real PyMongo clients (`MongoClient`, `AsyncMongoClient`) in several processes share one in-memory
database over TCP, so tests can run an API process, workers and beats against "one MongoDB" on a
machine with no MongoDB server. It speaks OP_MSG (and OP_QUERY for the legacy handshake), answers
as a standalone server of wire version 21 (MongoDB 7.0), and runs every command on ONE
`mongomock.MongoClient` under one lock: commands are serialised, so each is atomic.

In a test process:

    with MongoWireServer() as server:
        client = pymongo.MongoClient(server.url)

As a separate process (prints the URL, serves until SIGTERM or SIGINT):

    python -m tests.support.mongo_wire --port 27018

Limits: no transactions, auth, TLS, compression, change streams, tailable cursors or `explain`
(mongomock has no query planner); query and update semantics are mongomock's. `buildInfo`
answers `omnisched_wire: True` so a test can tell this server from a real one.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import signal
import socket
import socketserver
import struct
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import bson
import mongomock
from bson.codec_options import CodecOptions
from bson.int64 import Int64
from bson.raw_bson import RawBSONDocument
from mongomock.filtering import filter_applies
from pymongo.errors import CollectionInvalid, PyMongoError

log = logging.getLogger(__name__)

OP_REPLY = 1
OP_QUERY = 2004
OP_COMPRESSED = 2012
OP_MSG = 2013
CHECKSUM_PRESENT = 1 << 0
MORE_TO_COME = 1 << 1

WIRE_VERSION = 21  # MongoDB 7.0; PyMongo 4.20 needs at least 9 (MongoDB 4.4)
MAX_BSON_SIZE = 16 * 1024 * 1024
MAX_MESSAGE_SIZE = 48_000_000
MAX_WRITE_BATCH = 100_000
DEFAULT_BATCH = 101  # MongoDB's first batch for find and aggregate

# Datetimes are decoded naive (UTC, as BSON keeps them), stored so by mongomock, and encoded back
# as UTC; the client's `tz_aware` decides what it sees.
_DECODE = CodecOptions(tz_aware=False)

CODE_NAMES = {
    1: "InternalError",
    2: "BadValue",
    9: "FailedToParse",
    14: "TypeMismatch",
    20: "IllegalOperation",
    26: "NamespaceNotFound",
    27: "IndexNotFound",
    43: "CursorNotFound",
    48: "NamespaceExists",
    59: "CommandNotFound",
    115: "CommandNotSupported",
    11000: "DuplicateKey",
}


class CommandError(Exception):
    """A command failure, answered as `{ok: 0, errmsg, code, codeName}`."""

    def __init__(self, code: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.code = code
        self.errmsg = errmsg

    def reply(self) -> dict[str, Any]:
        return _error_reply(self.code, self.errmsg)


def _error_reply(code: int, errmsg: str, **extra: Any) -> dict[str, Any]:
    return {
        "ok": 0.0,
        "errmsg": errmsg,
        "code": code,
        "codeName": CODE_NAMES.get(code, "UnknownError"),
        **extra,
    }


def _failure(exc: BaseException) -> tuple[int, str]:
    """The code and message for an exception raised by mongomock."""
    if isinstance(exc, CommandError):
        return exc.code, exc.errmsg
    if isinstance(exc, CollectionInvalid):
        return 48, str(exc)
    if isinstance(exc, PyMongoError):
        return int(getattr(exc, "code", None) or 2), str(exc)
    if isinstance(exc, NotImplementedError):
        return 115, f"not supported by mongomock: {exc}"
    if isinstance(exc, TypeError | ValueError | KeyError):
        return 2, f"{type(exc).__name__}: {exc}"
    return 1, f"{type(exc).__name__}: {exc}"


def _write_error(index: int, exc: BaseException) -> dict[str, Any]:
    code, errmsg = _failure(exc)
    error: dict[str, Any] = {"index": index, "code": code, "errmsg": errmsg}
    details = getattr(exc, "details", None) or {}
    for key in ("keyPattern", "keyValue"):
        if key in details:
            error[key] = details[key]
    return error


def _is_replacement(update: Any) -> bool:
    if isinstance(update, list):
        raise CommandError(115, "pipeline-style updates are not supported")
    if not isinstance(update, dict):
        raise CommandError(9, "update must be a document")
    return not any(key.startswith("$") for key in update)


def _sort_list(sort: Any) -> list[tuple[str, Any]] | None:
    if not sort:
        return None
    return [
        (key, int(direction) if isinstance(direction, int | float) else direction)
        for key, direction in sort.items()
        if key != "$natural"
    ] or None


def _name(body: dict[str, Any], command: str) -> str:
    value = body.get(command)
    if not isinstance(value, str) or not value:
        raise CommandError(2, f"{command} needs a collection name (collection UUIDs unsupported)")
    return value


class _Backend:
    """One mongomock client and the command table; every command runs under `lock`."""

    def __init__(self) -> None:
        self.client = mongomock.MongoClient()
        self.lock = threading.Lock()
        self._cursors: dict[int, tuple[str, list[RawBSONDocument]]] = {}
        self._cursor_ids = itertools.count(1)
        self._commands: dict[str, Callable[[str, dict[str, Any], int], dict[str, Any]]] = {
            "hello": self._hello,
            "isMaster": self._hello,
            "ismaster": self._hello,
            "ping": lambda db, body, conn: {},
            "buildInfo": self._build_info,
            "buildinfo": self._build_info,
            "endSessions": lambda db, body, conn: {},
            "refreshSessions": lambda db, body, conn: {},
            "killSessions": lambda db, body, conn: {},
            "connectionStatus": lambda db, body, conn: {
                "authInfo": {"authenticatedUsers": [], "authenticatedUserRoles": []}
            },
            "whatsmyuri": lambda db, body, conn: {"you": "127.0.0.1:0"},
            "serverStatus": self._server_status,
            "find": self._find,
            "getMore": self._get_more,
            "killCursors": self._kill_cursors,
            "aggregate": self._aggregate,
            "count": self._count,
            "distinct": self._distinct,
            "insert": self._insert,
            "update": self._update,
            "delete": self._delete,
            "findAndModify": self._find_and_modify,
            "findandmodify": self._find_and_modify,
            "createIndexes": self._create_indexes,
            "listIndexes": self._list_indexes,
            "dropIndexes": self._drop_indexes,
            "create": self._create,
            "drop": self._drop,
            "dropDatabase": self._drop_database,
            "listCollections": self._list_collections,
            "listDatabases": self._list_databases,
        }
        for name in ("explain", "commitTransaction", "abortTransaction"):
            self._commands[name] = self._unsupported

    # Dispatch.
    def command(self, body: dict[str, Any], connection_id: int) -> dict[str, Any]:
        name = next(iter(body), "")
        handler = self._commands.get(name)
        if handler is None:
            return _error_reply(59, f"no such command: '{name}'")
        if body.get("autocommit") is False or body.get("startTransaction"):
            return _error_reply(20, "transactions are not supported by the mongomock wire server")
        try:
            with self.lock:
                reply = handler(body.get("$db", "admin"), body, connection_id)
        except Exception as exc:
            if not isinstance(exc, CommandError | PyMongoError):
                log.warning("command %s failed", name, exc_info=True)
            return _error_reply(*_failure(exc))
        reply.setdefault("ok", 1.0)
        return reply

    def reset(self) -> None:
        """Drop every database (between tests that share a server)."""
        with self.lock:
            for name in self.client.list_database_names():
                self.client.drop_database(name)
            self._cursors.clear()

    def _unsupported(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        raise CommandError(115, f"{next(iter(body))} is not supported by the mongomock wire server")

    # Handshake and diagnostics.
    def _hello(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        return {
            "helloOk": True,
            "isWritablePrimary": True,
            "ismaster": True,
            "maxBsonObjectSize": MAX_BSON_SIZE,
            "maxMessageSizeBytes": MAX_MESSAGE_SIZE,
            "maxWriteBatchSize": MAX_WRITE_BATCH,
            "localTime": datetime.now(UTC),
            "logicalSessionTimeoutMinutes": 30,
            "connectionId": conn,
            "minWireVersion": 0,
            "maxWireVersion": WIRE_VERSION,
            "readOnly": False,
        }

    def _build_info(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        return {
            "version": "7.0.0",
            "gitVersion": "omnisched-mongomock-wire",
            "versionArray": [7, 0, 0, 0],
            "bits": 64,
            "maxBsonObjectSize": MAX_BSON_SIZE,
            "storageEngines": ["mongomock"],
            "omnisched_wire": True,
        }

    def _server_status(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "version": "7.0.0",
            "process": "omnisched-mongomock-wire",
            "localTime": datetime.now(UTC),
        }

    # Cursors: results are computed whole under the lock and handed out in batches.
    def _cursor(
        self, ns: str, docs: list[Any], batch_size: Any, single_batch: bool = False
    ) -> dict[str, Any]:
        raw = [RawBSONDocument(bson.encode(doc)) for doc in docs]
        cursor_id, batch = self._next_batch(ns, raw, batch_size or DEFAULT_BATCH, single_batch)
        return {"cursor": {"firstBatch": batch, "id": Int64(cursor_id), "ns": ns}}

    def _next_batch(
        self, ns: str, raw: list[RawBSONDocument], batch_size: int, single_batch: bool
    ) -> tuple[int, list[RawBSONDocument]]:
        batch: list[RawBSONDocument] = []
        size = 0
        for doc in raw:
            if batch and (len(batch) >= batch_size or size + len(doc.raw) > MAX_BSON_SIZE):
                break
            batch.append(doc)
            size += len(doc.raw)
        rest = raw[len(batch) :]
        if not rest or single_batch:
            return 0, batch
        cursor_id = next(self._cursor_ids)
        self._cursors[cursor_id] = (ns, rest)
        return cursor_id, batch

    def _get_more(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        cursor_id = int(body["getMore"])
        if cursor_id not in self._cursors:
            raise CommandError(43, f"cursor id {cursor_id} not found")
        ns, raw = self._cursors.pop(cursor_id)
        new_id, batch = self._next_batch(ns, raw, body.get("batchSize") or len(raw), False)
        if new_id:  # keep the id the client holds
            self._cursors[cursor_id] = self._cursors.pop(new_id)
            new_id = cursor_id
        return {"cursor": {"nextBatch": batch, "id": Int64(new_id), "ns": ns}}

    def _kill_cursors(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        killed, not_found = [], []
        for cursor_id in body.get("cursors") or []:
            found = self._cursors.pop(int(cursor_id), None) is not None
            (killed if found else not_found).append(cursor_id)
        return {
            "cursorsKilled": killed,
            "cursorsNotFound": not_found,
            "cursorsAlive": [],
            "cursorsUnknown": [],
        }

    # Reads.
    def _find(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        name = _name(body, "find")
        limit = int(body.get("limit") or 0)
        single_batch = bool(body.get("singleBatch")) or limit < 0
        docs = list(
            self.client[db][name].find(
                body.get("filter") or {},
                body.get("projection") or None,
                skip=int(body.get("skip") or 0),
                limit=abs(limit),
                sort=_sort_list(body.get("sort")),
            )
        )
        return self._cursor(f"{db}.{name}", docs, body.get("batchSize"), single_batch)

    def _aggregate(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        if body.get("explain"):
            raise CommandError(115, "explain is not supported by the mongomock wire server")
        name = _name(body, "aggregate")
        docs = list(self.client[db][name].aggregate(list(body.get("pipeline") or [])))
        batch_size = (body.get("cursor") or {}).get("batchSize")
        return self._cursor(f"{db}.{name}", docs, batch_size)

    def _count(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        collection = self.client[db][_name(body, "count")]
        options = {k: abs(int(body[k])) for k in ("skip", "limit") if body.get(k)}
        return {"n": collection.count_documents(body.get("query") or {}, **options)}

    def _distinct(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        collection = self.client[db][_name(body, "distinct")]
        return {"values": collection.distinct(body["key"], body.get("query") or {})}

    # Writes: each statement separately, as MongoDB does; `ordered` stops at the first error.
    def _implicitly_create(self, db: str, name: str) -> None:
        # mongomock forgets an implicitly created collection once it is empty; MongoDB keeps it.
        if name not in self.client[db].list_collection_names():
            self.client[db].create_collection(name)

    def _insert(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        collection = self.client[db][_name(body, "insert")]
        if body.get("documents"):
            self._implicitly_create(db, collection.name)
        n, errors = 0, []
        for index, doc in enumerate(body.get("documents") or []):
            try:
                collection.insert_one(doc)
                n += 1
            except Exception as exc:
                errors.append(_write_error(index, exc))
                if body.get("ordered", True):
                    break
        return {"n": n, **({"writeErrors": errors} if errors else {})}

    def _update(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        collection = self.client[db][_name(body, "update")]
        n = modified = 0
        upserted: list[dict[str, Any]] = []
        errors = []
        if any(spec.get("upsert") for spec in body.get("updates") or []):
            self._implicitly_create(db, collection.name)
        for index, spec in enumerate(body.get("updates") or []):
            try:
                query, update = spec.get("q") or {}, spec.get("u")
                upsert, multi = bool(spec.get("upsert")), bool(spec.get("multi"))
                if _is_replacement(update):
                    if multi:
                        raise CommandError(9, "multi update is not supported for replacements")
                    result = collection.replace_one(query, update, upsert=upsert)
                else:
                    method = collection.update_many if multi else collection.update_one
                    result = method(
                        query, update, upsert=upsert, array_filters=spec.get("arrayFilters")
                    )
            except Exception as exc:
                errors.append(_write_error(index, exc))
                if body.get("ordered", True):
                    break
                continue
            n += result.matched_count
            modified += result.modified_count
            if result.upserted_id is not None:
                n += 1
                upserted.append({"index": index, "_id": result.upserted_id})
        reply: dict[str, Any] = {"n": n, "nModified": modified}
        if upserted:
            reply["upserted"] = upserted
        if errors:
            reply["writeErrors"] = errors
        return reply

    def _delete(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        collection = self.client[db][_name(body, "delete")]
        n, errors = 0, []
        for index, spec in enumerate(body.get("deletes") or []):
            try:
                query = spec.get("q") or {}
                if int(spec.get("limit") or 0) == 1:
                    n += collection.delete_one(query).deleted_count
                else:
                    n += collection.delete_many(query).deleted_count
            except Exception as exc:
                errors.append(_write_error(index, exc))
                if body.get("ordered", True):
                    break
        return {"n": n, **({"writeErrors": errors} if errors else {})}

    def _find_and_modify(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        name = next(iter(body))
        collection = self.client[db][_name(body, name)]
        query = body.get("query") or {}
        fields = body.get("fields") or None
        update, remove = body.get("update"), bool(body.get("remove"))
        upsert, new = bool(body.get("upsert")), bool(body.get("new"))
        if remove == (update is not None):
            raise CommandError(9, "findAndModify needs exactly one of remove and update")
        if remove and (new or upsert):
            raise CommandError(9, "remove cannot be combined with new or upsert")
        if upsert:
            self._implicitly_create(db, collection.name)
        old = collection.find_one(query, sort=_sort_list(body.get("sort")))
        if old is None and not upsert:
            return {"lastErrorObject": {"n": 0, "updatedExisting": False}, "value": None}
        before = None if old is None else collection.find_one({"_id": old["_id"]}, fields)
        if remove:
            collection.delete_one({"_id": old["_id"]})  # type: ignore[index]
            return {"lastErrorObject": {"n": 1}, "value": before}
        target = query if old is None else {"_id": old["_id"]}
        if _is_replacement(update):
            result = collection.replace_one(target, update, upsert=upsert)
        else:
            result = collection.update_one(
                target, update, upsert=upsert, array_filters=body.get("arrayFilters")
            )
        last_error: dict[str, Any] = {"n": 1, "updatedExisting": old is not None}
        doc_id = old["_id"] if old is not None else result.upserted_id
        if old is None:
            last_error["upserted"] = doc_id
        value = collection.find_one({"_id": doc_id}, fields) if new else before
        return {"lastErrorObject": last_error, "value": value}

    # Indexes and namespaces.
    def _create_indexes(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        name = _name(body, "createIndexes")
        existed = name in self.client[db].list_collection_names()
        collection = self.client[db][name]
        before = len(collection.index_information()) if existed else 1
        for spec in body.get("indexes") or []:
            keys = [
                (key, int(direction) if isinstance(direction, int | float) else direction)
                for key, direction in spec["key"].items()
            ]
            options = {k: v for k, v in spec.items() if k not in ("key", "v", "ns")}
            collection.create_index(keys, **options)
        return {
            "createdCollectionAutomatically": not existed,
            "numIndexesBefore": before,
            "numIndexesAfter": len(collection.index_information()),
        }

    def _require_collection(self, db: str, name: str) -> None:
        if name not in self.client[db].list_collection_names():
            raise CommandError(26, f"ns does not exist: {db}.{name}")

    def _list_indexes(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        name = _name(body, "listIndexes")
        self._require_collection(db, name)
        docs = [
            {"v": 2, "key": dict(info["key"]), "name": index_name}
            | {k: v for k, v in info.items() if k not in ("key", "v")}
            for index_name, info in self.client[db][name].index_information().items()
        ]
        return self._cursor(f"{db}.{name}", docs, (body.get("cursor") or {}).get("batchSize"))

    def _drop_indexes(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        name = _name(body, "dropIndexes")
        self._require_collection(db, name)
        collection = self.client[db][name]
        before = len(collection.index_information())
        index = body.get("index", "*")
        if index == "*":
            collection.drop_indexes()
        else:
            for one in index if isinstance(index, list) else [index]:
                if isinstance(one, dict):
                    collection.drop_index(list(one.items()))
                else:
                    collection.drop_index(one)
        return {"nIndexesWas": before}

    def _create(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        self.client[db].create_collection(_name(body, "create"))
        return {}

    def _drop(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        name = _name(body, "drop")
        if name not in self.client[db].list_collection_names():
            return {}  # MongoDB 7 no longer fails on a missing collection
        before = len(self.client[db][name].index_information())
        self.client[db].drop_collection(name)
        return {"ns": f"{db}.{name}", "nIndexesWas": before}

    def _drop_database(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        self.client.drop_database(db)
        return {"dropped": db}

    def _list_collections(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        docs: list[dict[str, Any]] = [
            {
                "name": name,
                "type": "collection",
                "options": {},
                "info": {"readOnly": False},
                "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"},
            }
            for name in sorted(self.client[db].list_collection_names())
        ]
        if body.get("filter"):
            docs = [doc for doc in docs if filter_applies(body["filter"], doc)]
        if body.get("nameOnly"):
            docs = [{"name": doc["name"], "type": doc["type"]} for doc in docs]
        batch_size = (body.get("cursor") or {}).get("batchSize")
        return self._cursor(f"{db}.$cmd.listCollections", docs, batch_size)

    def _list_databases(self, db: str, body: dict[str, Any], conn: int) -> dict[str, Any]:
        names = sorted(self.client.list_database_names())
        if body.get("nameOnly"):
            return {"databases": [{"name": name} for name in names]}
        return {
            "databases": [{"name": name, "sizeOnDisk": 0, "empty": False} for name in names],
            "totalSize": 0,
        }

    # Messages.
    def handle_message(
        self, opcode: int, payload: bytes, request_id: int, connection_id: int
    ) -> bytes | None:
        """The reply to one message (header stripped), or None when none is expected."""
        if opcode == OP_MSG:
            return self._op_msg(payload, request_id, connection_id)
        if opcode == OP_QUERY:
            return self._op_query(payload, request_id, connection_id)
        raise ValueError(f"unsupported opcode {opcode}")

    def _op_msg(self, payload: bytes, request_id: int, connection_id: int) -> bytes | None:
        (flags,) = struct.unpack_from("<I", payload)
        end = len(payload) - (4 if flags & CHECKSUM_PRESENT else 0)
        body: dict[str, Any] | None = None
        sequences: dict[str, list[Any]] = {}
        pos = 4
        while pos < end:
            kind = payload[pos]
            pos += 1
            (size,) = struct.unpack_from("<i", payload, pos)
            if kind == 0:
                body = bson.decode(payload[pos : pos + size], _DECODE)
                pos += size
            elif kind == 1:
                stop = pos + size
                name_end = payload.index(b"\x00", pos + 4)
                identifier = payload[pos + 4 : name_end].decode()
                sequences[identifier] = bson.decode_all(payload[name_end + 1 : stop], _DECODE)
                pos = stop
            else:
                raise ValueError(f"unknown OP_MSG section kind {kind}")
        if body is None:
            raise ValueError("OP_MSG without a body section")
        for identifier, docs in sequences.items():
            body.setdefault(identifier, []).extend(docs)
        reply = self._encode(self.command(body, connection_id))
        if flags & MORE_TO_COME:
            return None  # an unacknowledged write: the client reads no reply
        data = struct.pack("<IB", 0, 0) + reply
        return struct.pack("<iiii", 16 + len(data), 0, request_id, OP_MSG) + data

    def _op_query(self, payload: bytes, request_id: int, connection_id: int) -> bytes:
        name_end = payload.index(b"\x00", 4)
        namespace = payload[4:name_end].decode()
        pos = name_end + 1 + 8  # numberToSkip, numberToReturn
        (size,) = struct.unpack_from("<i", payload, pos)
        query = bson.decode(payload[pos : pos + size], _DECODE)
        if namespace.endswith(".$cmd"):
            command = query.get("$query", query)
            command.setdefault("$db", namespace.split(".", 1)[0])
            reply = self._encode(self.command(command, connection_id))
            flags = 0
        else:
            reply = bson.encode({"$err": "OP_QUERY is only supported for commands", "code": 2})
            flags = 2  # QueryFailure
        data = struct.pack("<iqii", flags, 0, 0, 1) + reply
        return struct.pack("<iiii", 16 + len(data), 0, request_id, OP_REPLY) + data

    @staticmethod
    def _encode(reply: dict[str, Any]) -> bytes:
        try:
            return bson.encode(reply)
        except Exception as exc:
            log.warning("cannot encode a reply", exc_info=True)
            return bson.encode(_error_reply(1, f"cannot encode the reply: {exc}"))


class _Handler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection_id = next(self.server.connection_ids)
        with self.server.connections_lock:
            self.server.connections.add(sock)
        try:
            while True:
                header = _recv_exact(sock, 16)
                if header is None:
                    return
                length, request_id, _, opcode = struct.unpack("<iiii", header)
                if not 16 <= length <= MAX_MESSAGE_SIZE:
                    return
                payload = _recv_exact(sock, length - 16)
                if payload is None:
                    return
                reply = self.server.backend.handle_message(
                    opcode, payload, request_id, connection_id
                )
                if reply is not None:
                    sock.sendall(reply)
        except OSError:
            return  # the client went away
        except Exception:
            log.warning("dropping connection %d on a bad message", connection_id, exc_info=True)
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(sock)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    """Exactly `n` bytes, or None at end of stream."""
    chunks, remaining = [], n
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], backend: _Backend) -> None:
        self.backend = backend
        self.connection_ids = itertools.count(1)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)


class MongoWireServer:
    """A MongoDB on 127.0.0.1 for tests: `start()` returns its URL, `stop()` ends it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.backend = _Backend()
        self._server: _TCPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def start(self) -> str:
        if self._server is None:
            self._server = _TCPServer((self.host, self.port), self.backend)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"mongo-wire-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self.url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            for sock in list(server.connections):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def reset(self) -> None:
        """Drop every database."""
        self.backend.reset()

    def __enter__(self) -> MongoWireServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    server = MongoWireServer(args.host, args.port)
    print(server.start(), flush=True)
    try:
        while not stopping.wait(0.2):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
