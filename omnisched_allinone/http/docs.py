"""The interactive API page at /docs: Swagger UI served from the installed package, no CDN.

`swagger-ui-bundle-v2` ships the Swagger UI 5 distribution (the first major version that reads
OpenAPI 3.1); only the files the page needs are served.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from omnisched_allinone.core.errors import NotFound

_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "favicon-16x16.png")

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>omnisched job API</title>
  <link rel="stylesheet" href="{root}/docs/static/swagger-ui.css">
  <link rel="icon" type="image/png" href="{root}/docs/static/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{root}/docs/static/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "{root}/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      tryItOutEnabled: true
    }});
  </script>
</body>
</html>
"""


def _assets_dir() -> Path:
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


async def docs_page(request: Request) -> Response:
    root = request.scope.get("root_path", "").rstrip("/")
    return HTMLResponse(_PAGE.format(root=root))


async def docs_asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _ASSETS:
        raise NotFound(f"no asset {name!r}")
    return FileResponse(_assets_dir() / name)


routes = [
    Route("/docs", docs_page, methods=["GET"], include_in_schema=False),
    Route("/docs/static/{name}", docs_asset, methods=["GET"], include_in_schema=False),
]
