"""The HTTP service: FastAPI routes over the loaded models, micro-batched inference, Prometheus metrics, the page.

Routes
------
POST /v1/predict                 {"text": "..."} or {"texts": [...]}, optional "model" (default: the first one)
POST /v1/models/{name}/predict   the same for the named model; `?explain=true` (or "explain": true) adds
                                 per-token attributions (integrated gradients, or "method": "occlusion")
GET  /v1/models, /v1/models/{name}, /v1/model (the default model): labels, architecture, test metrics, examples
GET  /healthz (the process answers), /readyz (every model's batcher is running), /metrics (Prometheus)
GET  /  the web page; /docs and /openapi.json: the API, described by FastAPI

Status codes: 422 for a body that is not the JSON this expects (the field is named in `detail`) or an empty
text; 413 for a body, batch or text over the limits; 404 for an unknown model; 503 with Retry-After when the
queue is full. Inference runs on one thread of its own, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources

from fastapi import HTTPException, Query
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..version import __version__
from .batching import MicroBatcher, QueueFull
from .models import ServedModel
from .schemas import PredictRequest, PredictResponse


@dataclass(frozen=True)
class ServerSettings:
    window_ms: float = 2.0  # how long a batch waits for more requests; 0 with max_batch 1 turns batching off
    max_batch: int = 64  # texts in one forward pass
    max_queue: int = 1024  # texts waiting at once, per model; beyond it: 503
    max_body_bytes: int = 1_000_000
    max_texts: int = 256  # texts in one request
    max_text_chars: int = 20_000
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        if self.max_texts > self.max_queue:
            raise ValueError(f"max_texts ({self.max_texts}) cannot exceed max_queue ({self.max_queue}): such a "
                             "request could never be queued")
        if min(self.max_batch, self.max_queue, self.max_body_bytes, self.max_texts, self.max_text_chars) < 1:
            raise ValueError("the limits must be at least 1")
        if self.window_ms < 0:
            raise ValueError("window_ms must be >= 0")


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (several apps can live in one process)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("textrnn_requests", "HTTP requests answered", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram("textrnn_request_seconds", "time to answer a request", ["route"],
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10),
                                 registry=self.registry)
        self.batch_size = Histogram("textrnn_batch_texts", "texts per forward pass", ["model"],
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=self.registry)
        self.texts = Counter("textrnn_texts", "texts classified", ["model"], registry=self.registry)
        self.queued = Gauge("textrnn_queued_texts", "texts waiting for a forward pass", ["model"],
                            registry=self.registry)
        self.rejected = Counter("textrnn_rejected", "requests refused because the queue was full", ["model"],
                                registry=self.registry)


def _route_of(path: str) -> str:
    """The route template a path belongs to: metric labels must not grow with what clients send."""
    if path.startswith("/v1/models/"):
        return "/v1/models/{name}/predict" if path.endswith("/predict") else "/v1/models/{name}"
    if path in ("/", "/v1/predict", "/v1/model", "/v1/models", "/healthz", "/readyz", "/metrics", "/docs",
                "/openapi.json"):
        return path
    return "/static" if path.startswith(("/static/", "/static-offline-docs/")) else "other"


class Guard:
    """ASGI middleware: refuse bodies over the limit with 413 before the app reads them, and count every request
    and its latency, whatever route, status or error it ends in."""

    def __init__(self, app, max_body_bytes: int, metrics: Metrics):
        self.app, self.max_body_bytes, self.metrics = app, max_body_bytes, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]

        async def send_counted(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            body = await self._read_body(scope, receive)
            if body is None:
                await _send_json(send_counted, 413, {"detail": f"the request body is over {self.max_body_bytes:,} "
                                                               "bytes"})
                return
            replayed = False

            async def receive_body():
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()  # after the body: the disconnect, when it comes

            await self.app(scope, receive_body, send_counted)
        finally:
            route = _route_of(scope["path"])
            self.metrics.requests.labels(route, str(status[0])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)

    async def _read_body(self, scope, receive) -> bytes | None:
        """The whole body, or None when it is over the limit (said by Content-Length, or found reading)."""
        for key, value in scope.get("headers", ()):
            if key == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away; the app sees an empty body
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


async def _send_json(send, status: int, content: dict) -> None:
    body = json.dumps(content).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(models: list[ServedModel], settings: ServerSettings = ServerSettings()):
    """The FastAPI application serving `models` (the first is the default one)."""
    if not models:
        raise ValueError("a server needs at least one model")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"two models share a name: {', '.join(names)} (give each one with --name)")
    by_name = {m.name: m for m in models}
    default = models[0].name
    metrics = Metrics()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="textrnn-inference")
    batchers: dict[str, MicroBatcher] = {}
    explaining = {"texts": 0}  # explanations run one text at a time on the same thread; bounded as the queue is

    @contextlib.asynccontextmanager
    async def lifespan(app):
        for m in models:
            batcher = MicroBatcher(m.predict_proba, executor,
                                   window_ms=settings.window_ms if m.exact_in_any_batch else 0.0,
                                   max_batch=settings.max_batch if m.exact_in_any_batch else 1,
                                   max_queue=settings.max_queue,
                                   on_batch=metrics.batch_size.labels(m.name).observe)
            batcher.start()
            batchers[m.name] = batcher
        # Everything loaded so far (torch, the models, FastAPI) lives as long as the server: moved out of the
        # collector's sight, a full collection no longer walks it, which otherwise stalled every request in
        # flight for ~120 ms now and then (measured by bench/serve_load.py)
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            for batcher in batchers.values():
                await batcher.stop()
            batchers.clear()
            executor.shutdown(wait=False, cancel_futures=True)

    # FastAPIOffline serves the docs page's Swagger UI from its own package instead of a CDN: /docs works on a
    # machine without internet
    app = FastAPIOffline(title="textrnn", version=__version__, lifespan=lifespan,
                  description="Recurrent-network text classifiers over HTTP: labels, probabilities and per-token "
                              "attributions.")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request, exc: RequestValidationError):
        # where and what, without echoing the input back (a rejected text may be megabytes)
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        # FastAPI answers 400 for a body that is not even text (its JSON decoding raised something other than a
        # JSONDecodeError); to a client that is malformed JSON like any other
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
            return JSONResponse({"detail": [{"loc": ["body"], "msg": "the body is not UTF-8 JSON",
                                             "type": "json_invalid"}]}, status_code=422)
        return await http_exception_handler(request, exc)

    def model_named(name: str | None) -> ServedModel:
        model = by_name.get(name or default)
        if model is None:
            raise HTTPException(404, f"no model named {name!r}: this server has {', '.join(names)}")
        return model

    async def predict(model: ServedModel, body: PredictRequest, explain: bool) -> Response:
        texts = body.all_texts
        if len(texts) > settings.max_texts:
            raise HTTPException(413, f"{len(texts)} texts in one request; at most {settings.max_texts}")
        too_long = next((i for i, t in enumerate(texts) if len(t) > settings.max_text_chars), None)
        if too_long is not None:
            raise HTTPException(413, f"text {too_long} has {len(texts[too_long]):,} characters; at most "
                                     f"{settings.max_text_chars:,}")
        explain = explain or body.explain
        if explain and not model.can_explain:
            raise HTTPException(400, f"model {model.name!r} runs on onnxruntime, which gives no gradients: serve it "
                                     "with --runtime torch to explain")
        retry = {"Retry-After": str(settings.retry_after_s)}
        if explain:
            if explaining["texts"] + len(texts) > settings.max_queue:
                metrics.rejected.labels(model.name).inc()
                raise HTTPException(503, "too many explanations waiting; try again shortly", headers=retry)
            explaining["texts"] += len(texts)
            try:
                found = await asyncio.get_running_loop().run_in_executor(executor, model.explain, texts, body.method)
            finally:
                explaining["texts"] -= len(texts)
            predictions = [{"label": e.label, "probabilities": e.probabilities, "attributions": {
                "method": e.method, "completeness_gap": e.delta,
                "tokens": [{"token": t.token, "start": t.start, "end": t.end, "score": t.score} for t in e.tokens]}}
                for e in found]
        else:
            batcher = batchers[model.name]
            try:  # the queue gauge is read off the batchers when /metrics is scraped, not set per request
                rows = await batcher.submit(texts)
            except QueueFull:
                metrics.rejected.labels(model.name).inc()
                raise HTTPException(503, "the server is busy: too many texts waiting; try again shortly",
                                    headers=retry) from None
            labels = model.labels
            predictions = [{"label": labels[best], "probabilities": dict(zip(labels, row))}
                           for best, row in zip(rows.argmax(1).tolist(), rows.tolist())]
        metrics.texts.labels(model.name).inc(len(texts))
        # serialised here rather than validated again against PredictResponse (which documents it): on a busy
        # server that second pass is a large share of a request's time
        return Response(json.dumps({"model": model.name, "predictions": predictions}).encode(),
                        media_type="application/json")

    @app.post("/v1/predict", response_model=PredictResponse,
              summary="classify texts with the model the body names (default: the first one)")
    async def predict_default(body: PredictRequest, explain: bool = Query(False, description="add attributions")):
        return await predict(model_named(body.model), body, explain)

    @app.post("/v1/models/{name}/predict", response_model=PredictResponse,
              summary="classify texts with the named model")
    async def predict_named(name: str, body: PredictRequest, explain: bool = Query(False)):
        if body.model is not None and body.model != name:
            raise HTTPException(422, f"the path names model {name!r} but the body names {body.model!r}")
        return await predict(model_named(name), body, explain)

    @app.get("/v1/models", summary="the served models")
    async def list_models():
        return {"default": default, "models": [m.info() for m in models]}

    @app.get("/v1/models/{name}", summary="one model: labels, architecture, test metrics, examples")
    async def model_info(name: str):
        return model_named(name).info()

    @app.get("/v1/model", summary="the default model")
    async def default_model_info():
        return model_named(default).info()

    @app.get("/healthz", summary="liveness: the process answers")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", summary="readiness: every model is loaded and its batcher running")
    async def readyz():
        ready = len(batchers) == len(models) and all(b.running for b in batchers.values())
        return JSONResponse({"status": "ready" if ready else "starting", "models": names},
                            status_code=200 if ready else 503)

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus():
        for name, batcher in batchers.items():
            metrics.queued.labels(name).set(batcher.queued)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    static = resources.files("textrnn.serve") / "static"

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(str(static / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    app.add_middleware(Guard, max_body_bytes=settings.max_body_bytes, metrics=metrics)
    app.state.metrics, app.state.batchers, app.state.settings = metrics, batchers, settings
    return app
