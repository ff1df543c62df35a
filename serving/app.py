"""The HTTP server around CardFlow's KServe models: KServe 0.21's REST server (its V2 routes, `/metrics` and
histograms), bound where we say, plus what it lacks:

- a V2 middleware: a request body over `max_request_bytes` is refused (413) before it is read whole; a body
  that is a V2 *response* (`outputs`, no `inputs`) becomes the request that carries those outputs on, so
  an InferenceGraph `Sequence` with `data: $response` chains our servers (kserve#3051); every answer is
  counted in `cardflow_requests_total{code}` and `cardflow_in_flight_requests`;
- errors through the one error table (common/errors.py): CardFlow's errors get their category's status, a
  malformed V2 body is a 400 naming the field (FastAPI would say 422), never a 500 for bad input;
- `/v2/models/<name>` metadata with the served version and alias in `parameters`;
- the V2 repository extension's `load` / `unload` wired to the model: `load` re-resolves the alias and swaps
  to the version it names (`cardflow serve reload` calls it), `unload` marks the model not ready (503).

KServe's own REST server binds 0.0.0.0 (hard-coded); here the bind address is a setting (127.0.0.1 by
default, the container sets 0.0.0.0).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from common.errors import CardflowError, NotFound, outcome
from serving import metrics as m
from serving.v2 import response_as_request

log = logging.getLogger(__name__)
Labels = Callable[[], tuple[str, str, str, str]]


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    max_request_bytes: int = 32 * 1024 * 1024


def _json_response(status: int, message: str) -> tuple[dict, bytes]:
    body = orjson.dumps({"error": message})
    return ({"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]},
            body)


class V2Middleware:
    """Size limit, response-as-request, and the request counter (see the module docstring)."""

    def __init__(self, app, *, step: str, labels: Labels, max_request_bytes: int) -> None:
        self.app = app
        self.step = step
        self.labels = labels
        self.max_request_bytes = max_request_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v2/models/"):
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def counted_send(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        m.IN_FLIGHT.labels(self.step).inc()
        try:
            if scope["method"] == "POST" and scope["path"].endswith("/infer"):
                await self._infer(scope, receive, counted_send)
            else:
                await self.app(scope, receive, counted_send)
        finally:
            m.IN_FLIGHT.labels(self.step).dec()
            try:
                labels = self.labels()
            except Exception:  # noqa: BLE001 — a model not loaded yet
                labels = (self.step, "", "", "")
            m.REQUESTS.labels(*labels, str(status["code"])).inc()

    async def _infer(self, scope, receive, send) -> None:
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_request_bytes:
            await self._refuse(send, 413, f"request body is {declared} bytes; the limit is {self.max_request_bytes} "
                                          "(--max-request-mb)")
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_request_bytes:
                await self._refuse(send, 413, f"request body is over {self.max_request_bytes} bytes (--max-request-mb)")
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if "inference-header-content-length" not in headers and body[:1] in (b"{", b" ", b"\n"):
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                await self._refuse(send, 400, f"request body is not JSON ({exc})")
                return
            rewritten = response_as_request(parsed)
            if rewritten is not parsed:
                body = orjson.dumps(rewritten)
            # A JSON body is JSON whatever its content-type says (tritonclient sends none): KServe reads a body
            # without `application/json` as binary and wants the binary extension's header.
            if rewritten is not parsed or not headers.get("content-type", "").startswith("application/json"):
                scope = {**scope, "headers": [(k, v) for k, v in scope["headers"]
                                              if k.lower() not in (b"content-length", b"content-type")]
                         + [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]}
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send, status: int, message: str) -> None:
        start, body = _json_response(status, message)
        await send(start)
        await send({"type": "http.response.body", "body": body})


def _validation_message(exc) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {error.get('msg')}")
    return "malformed V2 request: " + "; ".join(parts)


def customise(app, models: Sequence[Any], *, step: str, labels: Labels, settings: ServerSettings) -> None:
    """Add the middleware, error handlers and routes to KServe's FastAPI app (before it starts)."""
    from fastapi import APIRouter
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    by_name = {model.name: model for model in models}

    async def cardflow_error(_, exc: CardflowError):
        status = outcome(exc).http_status
        (log.error if status >= 500 else log.info)("%s: %s", type(exc).__name__, exc)
        return JSONResponse(status_code=status, content={"error": str(exc)})

    async def invalid_body(_, exc: RequestValidationError):
        return JSONResponse(status_code=400, content={"error": _validation_message(exc)})

    app.add_exception_handler(CardflowError, cardflow_error)
    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_middleware(V2Middleware, step=step, labels=labels, max_request_bytes=settings.max_request_bytes)

    def model_of(model_name: str):
        if model_name not in by_name:
            raise NotFound(f"model {model_name!r} is not served here; models: {', '.join(by_name)}")
        return by_name[model_name]

    async def metadata(model_name: str) -> dict:
        model = model_of(model_name)
        params = model.metadata_parameters()
        return {"name": model.name, "versions": [params["cardflow.version"]] if params.get("cardflow.version") else [],
                "platform": "cardflow", "inputs": model.get_input_types(), "outputs": model.get_output_types(),
                "parameters": params}

    async def load(model_name: str) -> dict:
        model = model_of(model_name)
        answer = await model.reload()
        model.ready = True
        return answer

    async def unload(model_name: str) -> dict:
        model = model_of(model_name)
        model.ready = False
        return {"name": model_name, "unload": True}

    router = APIRouter()
    router.add_api_route("/v2/models/{model_name}", metadata, methods=["GET"])
    router.add_api_route("/v2/repository/models/{model_name}/load", load, methods=["POST"])
    router.add_api_route("/v2/repository/models/{model_name}/unload", unload, methods=["POST"])
    before = len(app.router.routes)
    app.include_router(router)
    ours = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[0:0] = ours  # ahead of KServe's routes of the same paths


def run(models: Sequence[Any], settings: ServerSettings, *, step: str, labels: Labels) -> None:
    """Serve the (loaded) models until SIGINT/SIGTERM (uvicorn finishes the requests in flight)."""
    from kserve.model_server import FASTAPI_APP_IMPORT_STRING, ModelServer
    from kserve.model_server import app as kserve_app
    from kserve.protocol.rest.server import RESTServer

    server = ModelServer(http_port=settings.port, enable_grpc=False, workers=1)
    for model in models:
        server.register_model(model)
    rest = RESTServer(FASTAPI_APP_IMPORT_STRING, server.dataplane, server.model_repository_extension, settings.port,
                      grace_period=10)
    rest.config.host = settings.host
    create = rest.create_application

    def create_application() -> None:
        create()
        customise(kserve_app, models, step=step, labels=labels, settings=settings)

    rest.create_application = create_application  # type: ignore[method-assign]
    log.info("serving %s on http://%s:%d", ", ".join(model.name for model in models), settings.host, settings.port)
    asyncio.run(rest.start())
