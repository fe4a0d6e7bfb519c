"""The HTTP/JSON face of the job API: the same operations as gRPC, transcoded to JSON.

Each route names an RPC of `SchedulerService` (`routes.py`); requests are parsed into that RPC's
request message, answered by the gRPC servicer itself and written with the proto JSON mapping, so
the two faces cannot drift. The OpenAPI document is generated from the same route table and the
proto descriptors.
"""

from omnisched_allinone.http.app import create_http_app
from omnisched_allinone.http.server import HttpServer

__all__ = ["HttpServer", "create_http_app"]
