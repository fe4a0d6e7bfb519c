from tests.support.fixtures import mongo_wire_server, mongo_wire_url

__all__ = ["mongo_wire_server", "mongo_wire_url"]
