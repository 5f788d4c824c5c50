"""``create_app(registry, config)``: the FastAPI app over the resident models; ``serve`` runs it.

The event loop only parses, admits and streams: model work runs on the engine thread of each
model and in worker threads. At start the default model is loaded and the voices file's voices are
encoded (``/readyz`` answers 503 until then); uploaded voices live in the voice store under
``data_dir`` and are read from it when first named; at shutdown uvicorn lets in-flight requests finish
(up to ``shutdown_timeout_s``) before the engines close.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from fastsovits.errors import FastSovitsError, InvalidParameter
from fastsovits.server.config import ModelSpec, ServerConfig
from fastsovits.server.errors import NotFound, ServerError, error_response
from fastsovits.server.guard import GuardMiddleware
from fastsovits.server.metrics import ServerMetrics
from fastsovits.server.models import ModelRegistry
from fastsovits.server.voice_refs import StoredVoiceService
from fastsovits.server.voices import Voice, VoiceRegistry, load_voices_file
from fastsovits.voices.store import VoiceStore

log = logging.getLogger("fastsovits.server")


@dataclass
class ServerState:
    config: ServerConfig
    models: ModelRegistry
    voices: VoiceRegistry
    metrics: ServerMetrics
    service: StoredVoiceService
    ready: bool = False
    restart_requested: bool = False  # /control?command=restart: re-exec after the graceful shutdown
    _default_voice: Voice | None = field(default=None, repr=False)  # set by /set_refer_audio

    def default_voice(self) -> Voice | None:
        if self._default_voice is not None:
            return self._default_voice
        return self.voices.get(self.voices.default) if self.voices.default else None

    def set_default_voice(self, voice: Voice) -> None:
        self._default_voice = voice


def create_app(registry: ModelRegistry, config: ServerConfig, voices: VoiceRegistry | None = None) -> FastAPI:
    from fastsovits.server import routes_api_v2, routes_openai, routes_stream, routes_voices

    metrics = ServerMetrics()
    metrics.models = registry
    registry.on_load = metrics.attach
    voices = voices if voices is not None else VoiceRegistry(VoiceStore.open(config.data_dir))
    state = ServerState(config, registry, voices, metrics, StoredVoiceService(registry, metrics, config, voices.store))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with registry.lease():
            pass
        for voice in voices.memory_voices():  # stored voices: their features are read when first named
            await state.service.reference(voice, request=False)
        state.ready = True
        log.info("fastsovits server ready on %s:%d", config.host, config.port)
        yield
        state.ready = False
        await registry.close()

    app = FastAPI(title="fastsovits", version="0.1", lifespan=lifespan)
    app.state.fastsovits = state
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[
                "X-Sample-Rate",
                "X-Stop-Reasons",
                "X-Capped-Sentences",
                "X-Guard-Summary",
                "Retry-After",
                "X-Request-ID",
            ],
        )
    app.add_middleware(GuardMiddleware, config=config)

    @app.exception_handler(FastSovitsError)
    async def _typed(request: Request, exc: FastSovitsError):
        return error_response(exc, config.retry_after_s)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        # Starlette's own refusals (unknown route, wrong method, a body it cannot parse) in the error shape.
        detail = exc.detail if isinstance(exc.detail, str) else "invalid request"
        if exc.status_code == 404:
            err: FastSovitsError = NotFound(f"no route {request.url.path}")
        elif exc.status_code < 500:
            err = InvalidParameter(detail if exc.status_code != 400 else f"the body cannot be parsed: {detail}")
            err.status = exc.status_code  # type: ignore[attr-defined]
        else:
            err = ServerError(detail)
        response = error_response(err, config.retry_after_s)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        err = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        msg = err.get("msg", "invalid request")
        text = f"{where}: {msg}" if where else msg
        if err.get("type") == "json_invalid":
            text = f"the body is not valid JSON: {msg}"
        return error_response(InvalidParameter(text))

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz():
        if not state.ready:
            return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": "1"})
        stored = await to_thread.run_sync(len, voices.store) if voices.store is not None else 0
        return {"status": "ready", "models": list(registry.resident), "voices": len(voices.memory_voices()) + stored}

    @app.get("/metrics")
    async def metrics_route():
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(routes_api_v2.router)
    app.include_router(routes_openai.router)
    app.include_router(routes_voices.router)
    app.include_router(routes_stream.router)
    return app


def serve(config: ServerConfig, model: ModelSpec) -> None:
    """Build the registry and voices (``config.voices_file``) and run uvicorn until SIGINT/SIGTERM."""
    import prometheus_client
    import uvicorn

    prometheus_client.disable_created_metrics()  # this process is the server's own: no *_created series
    store = VoiceStore.open(config.data_dir)
    voices = VoiceRegistry(store)
    registry = ModelRegistry(model, config)
    if config.voices_file is not None:
        for spec in load_voices_file(config.voices_file, voices, model, config.max_audio_seconds):
            registry.declare(spec)
    app = create_app(registry, config, voices)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info(
        "starting with %s",
        json.dumps({"host": config.host, "port": config.port, "model": model.name, "voice_store": str(store.path)}),
    )
    # uvicorn re-raises the stop signal once its graceful shutdown is done; a no-op handler underneath
    # turns that into a clean exit (status 0) instead of death by SIGTERM.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        timeout_graceful_shutdown=int(config.shutdown_timeout_s),
        log_level="warning",
        access_log=False,
    )
    if app.state.fastsovits.restart_requested:
        # As the official api_v2 restart: the same command line again, in this process (same pid, so a
        # supervisor keeps tracking it). In-flight requests have finished; uploaded voices are in the store.
        log.info("restarting")
        argv = [sys.executable, "-m", "fastsovits", *sys.argv[1:]]
        os.execv(sys.executable, argv)
