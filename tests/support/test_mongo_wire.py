"""The mongomock wire server speaks enough MongoDB for real PyMongo clients in several processes."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, MongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure
from pymongo.write_concern import WriteConcern

from tests.support.mongo_wire import MongoWireServer

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def connect(url: str) -> MongoClient:
    return MongoClient(url, tz_aware=True, serverSelectionTimeoutMS=5000)


@pytest.fixture
def client(mongo_wire_url: str) -> Iterator[MongoClient]:
    with connect(mongo_wire_url) as client:
        yield client


@pytest.fixture
def db_name(client: MongoClient) -> Iterator[str]:
    name = f"wire_{uuid.uuid4().hex[:10]}"
    yield name
    client.drop_database(name)


def test_the_handshake_answers_as_a_standalone_wire_21_server(client: MongoClient) -> None:
    hello = client.admin.command("hello")
    assert hello["isWritablePrimary"] is True
    assert hello["maxWireVersion"] == 21
    assert "setName" not in hello
    assert client.admin.command("ping")["ok"] == 1.0
    assert client.server_info()["omnisched_wire"] is True


def test_crud_round_trips_through_a_sync_client(client: MongoClient, db_name: str) -> None:
    things = client[db_name].things
    things.insert_many(
        [{"_id": i, "name": f"n{i}", "at": T0 + timedelta(minutes=i)} for i in range(5)]
    )

    assert things.find_one({"_id": 2}) == {"_id": 2, "name": "n2", "at": T0 + timedelta(minutes=2)}
    assert things.find_one({"_id": 2})["at"].utcoffset() == timedelta(0)
    result = things.update_one({"_id": 1}, {"$set": {"name": "one"}, "$inc": {"runs": 2}})
    assert (result.matched_count, result.modified_count) == (1, 1)
    assert things.update_many({"_id": {"$gte": 3}}, {"$set": {"late": True}}).modified_count == 2
    assert things.update_one({"_id": 99}, {"$set": {"x": 1}}).matched_count == 0
    upserted = things.update_one({"_id": 7}, {"$set": {"name": "n7"}}, upsert=True)
    assert upserted.upserted_id == 7
    assert things.replace_one({"_id": 7}, {"name": "seven"}).modified_count == 1
    assert things.find_one({"_id": 7}) == {"_id": 7, "name": "seven"}
    assert things.delete_one({"_id": 0}).deleted_count == 1
    assert things.delete_many({"late": True}).deleted_count == 2
    assert sorted(doc["_id"] for doc in things.find()) == [1, 2, 7]
    assert things.find_one({"_id": 1}, {"runs": 1, "_id": 0}) == {"runs": 2}


def test_queries_sort_limit_skip_count_and_batch(client: MongoClient, db_name: str) -> None:
    things = client[db_name].things
    things.insert_many(
        [{"_id": i, "even": i % 2 == 0, "at": T0 + timedelta(seconds=i)} for i in range(350)]
    )

    assert [d["_id"] for d in things.find().sort("at", DESCENDING).limit(3)] == [349, 348, 347]
    assert [d["_id"] for d in things.find({"even": True}).sort("_id").skip(2).limit(2)] == [4, 6]
    assert things.count_documents({}) == 350
    assert things.count_documents({"even": True, "_id": {"$lt": 10}}) == 5
    assert things.count_documents({"nothing": 1}) == 0
    assert things.estimated_document_count() == 350
    # More than one batch: getMore, with the default and with a small batch size.
    assert len(list(things.find())) == 350
    assert [d["_id"] for d in things.find().sort("_id").batch_size(7)] == list(range(350))
    assert len(list(things.aggregate([{"$match": {"even": False}}], batchSize=10))) == 175
    cursor = things.find().batch_size(5)
    next(cursor)
    cursor.close()  # killCursors
    # Datetimes compare as dates, to the millisecond.
    assert things.count_documents({"at": {"$lt": T0 + timedelta(seconds=3)}}) == 3


def test_find_one_and_modify_covers_update_upsert_and_remove(
    client: MongoClient, db_name: str
) -> None:
    leases = client[db_name].leases
    doc = leases.find_one_and_update(
        {"_id": "beat", "$or": [{"owner": "a"}, {"expires_at": {"$lt": T0}}]},
        {"$set": {"owner": "a", "expires_at": T0}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    assert doc == {"_id": "beat", "owner": "a", "expires_at": T0}
    with pytest.raises(DuplicateKeyError):  # held by a: b's upsert collides on _id
        leases.find_one_and_update(
            {"_id": "beat", "owner": "b"}, {"$set": {"owner": "b"}}, upsert=True
        )
    before = leases.find_one_and_update({"_id": "beat"}, {"$set": {"owner": "c"}})
    assert before is not None and before["owner"] == "a"
    counter = leases.find_one_and_update(
        {"_id": "seq"}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert counter == {"_id": "seq", "value": 1}
    assert leases.find_one_and_update({"_id": "none"}, {"$set": {"x": 1}}) is None
    assert leases.find_one_and_delete({"_id": "beat"}, projection={"owner": 1, "_id": 0}) == {
        "owner": "c"
    }
    assert leases.find_one({"_id": "beat"}) is None


def test_a_unique_index_rejects_duplicates(client: MongoClient, db_name: str) -> None:
    jobs = client[db_name].jobs
    jobs.create_index("name", unique=True)
    jobs.create_index([("job_id", ASCENDING), ("_id", DESCENDING)])
    jobs.insert_one({"_id": 1, "name": "a"})
    jobs.insert_one({"_id": 2, "name": "b"})

    with pytest.raises(DuplicateKeyError):
        jobs.insert_one({"_id": 3, "name": "a"})
    with pytest.raises(DuplicateKeyError):
        jobs.insert_one({"_id": 1, "name": "c"})
    with pytest.raises(DuplicateKeyError):
        jobs.find_one_and_update({"_id": 2}, {"$set": {"name": "a"}})
    with pytest.raises(DuplicateKeyError):
        jobs.update_one({"_id": 2}, {"$set": {"name": "a"}})
    assert jobs.count_documents({}) == 2
    indexes = {index["name"]: index for index in jobs.list_indexes()}
    assert indexes["name_1"]["unique"] is True
    assert dict(indexes["job_id_1__id_-1"]["key"]) == {"job_id": 1, "_id": -1}


def test_namespaces_can_be_listed_and_dropped(client: MongoClient, db_name: str) -> None:
    db = client[db_name]
    db.a.insert_one({})
    db.create_collection("b")
    db.c.update_one({"_id": 1}, {"$set": {"x": 1}}, upsert=True)
    db.c.delete_one({"_id": 1})  # an emptied collection still exists
    assert sorted(db.list_collection_names()) == ["a", "b", "c"]
    assert db_name in client.list_database_names()
    db.drop_collection("a")
    db.drop_collection("never")
    assert sorted(db.list_collection_names()) == ["b", "c"]
    client.drop_database(db_name)
    assert db_name not in client.list_database_names()


def test_unsupported_commands_fail_with_a_code(client: MongoClient, db_name: str) -> None:
    with pytest.raises(OperationFailure) as unknown:
        client[db_name].command("noSuchCommand")
    assert unknown.value.code == 59
    with pytest.raises(OperationFailure) as explain:
        client[db_name].things.find({}).explain()
    assert explain.value.code == 115


def test_unacknowledged_writes_are_applied(client: MongoClient, db_name: str) -> None:
    fire_and_forget = client[db_name].get_collection("x", write_concern=WriteConcern(w=0))
    fire_and_forget.insert_one({"_id": 1})
    assert client[db_name].x.find_one({"_id": 1}) == {"_id": 1}


async def test_an_async_client_works_too(mongo_wire_url: str, db_name: str) -> None:
    client: AsyncMongoClient = AsyncMongoClient(mongo_wire_url, tz_aware=True)
    try:
        things = client[db_name].things
        await things.create_index("name", unique=True)
        await things.insert_one({"_id": "a", "name": "a", "at": T0})
        with pytest.raises(DuplicateKeyError):
            await things.insert_one({"_id": "b", "name": "a"})
        assert await things.find_one({"name": "a"}) == {"_id": "a", "name": "a", "at": T0}
        assert await things.count_documents({"at": {"$lte": T0}}) == 1
        docs = await things.find({}).sort("_id", ASCENDING).limit(5).to_list(None)
        assert [doc["_id"] for doc in docs] == ["a"]
    finally:
        await client.close()


def test_clients_in_two_threads_see_each_others_writes(mongo_wire_url: str, db_name: str) -> None:
    def write(n: int) -> None:
        with connect(mongo_wire_url) as client:
            for i in range(50):
                client[db_name].counter.update_one({"_id": "c"}, {"$inc": {"n": 1}}, upsert=True)
                client[db_name].log.insert_one({"writer": n, "i": i})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with connect(mongo_wire_url) as client:
        assert client[db_name].counter.find_one({"_id": "c"}) == {"_id": "c", "n": 100}
        assert client[db_name].log.count_documents({"writer": 1}) == 50


def test_a_subprocess_shares_the_database(
    client: MongoClient, mongo_wire_url: str, db_name: str
) -> None:
    client[db_name].jobs.insert_one({"_id": "from-parent"})
    script = (
        "import sys; from pymongo import MongoClient\n"
        "c = MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000)\n"
        "db = c[sys.argv[2]]\n"
        "assert db.jobs.find_one({'_id': 'from-parent'})\n"
        "db.jobs.insert_one({'_id': 'from-child'})\n"
    )
    subprocess.run([sys.executable, "-c", script, mongo_wire_url, db_name], check=True, timeout=30)
    assert client[db_name].jobs.find_one({"_id": "from-child"}) == {"_id": "from-child"}


def test_a_killed_client_process_leaves_the_server_serving(
    client: MongoClient, mongo_wire_url: str, db_name: str
) -> None:
    script = (
        "import sys, time; from pymongo import MongoClient\n"
        "c = MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000)\n"
        "c[sys.argv[2]].x.insert_one({'_id': 1}); print('ready', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, mongo_wire_url, db_name], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    finally:
        child.kill()
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    assert client[db_name].x.find_one({}) == {"_id": 1}
    # A connection dropped halfway through a message is no harm either.
    host, port = client.address  # type: ignore[misc]
    with socket.create_connection((host, port)) as raw:
        raw.sendall(b"\x40\x00\x00\x00\x01")
    assert client.admin.command("ping")["ok"] == 1.0


def test_the_server_runs_as_a_separate_process_until_sigterm(db_name: str) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.support.mongo_wire", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("mongodb://127.0.0.1:") and url.endswith("/?directConnection=true")
        with connect(url) as client:
            client[db_name].x.insert_one({"_id": 1})
            assert client[db_name].x.count_documents({}) == 1
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=10) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_stop_ends_the_server_with_clients_still_connected() -> None:
    server = MongoWireServer()
    url = server.start()
    client = connect(url)
    client.admin.command("ping")
    server.stop()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0
    client.close()


def test_reset_drops_every_database(client: MongoClient, db_name: str) -> None:
    server = MongoWireServer()
    with server, connect(server.url) as own:
        own[db_name].x.insert_one({"_id": 1})
        server.reset()
        assert db_name not in own.list_database_names()
