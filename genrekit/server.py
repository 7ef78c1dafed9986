"""The web page and HTTP API for genre prediction (`genrekit serve`).

`create_app` loads the classifier once and serves:

- `POST /api/predict`: a multipart upload (form field `file`, any format genrekit reads) -> the
  prediction as `genrekit predict --format json` gives it, `source` being the upload's file name;
- `GET /api/health`, `GET /api/labels`; `GET /openapi.json` describes the API;
- `GET /`: a self-contained page (genrekit/web/index.html) that posts files to the API.

Every error is JSON `{"error": "one line"}`; bad audio gives 422 with the line `genrekit predict` prints
(`FILE: reason`). Uploads are streamed to a temporary file (see `genrekit.upload`) and predicted in a
worker thread, so the event loop keeps serving other requests meanwhile.

Under load it stays bounded: at most `max_concurrent` predictions run and `max_waiting` more requests
are admitted (receiving their upload or waiting for a turn); the rest get 503 with `Retry-After` at once.
Audio longer than `max_minutes` gets 413, from its header before any decoding, or, when the header does
not tell, as soon as decoding (without scoring) passes the limit. A client that disconnects stops its prediction
at the next 30 s block. With `server_config`, a client must finish its request headers within `timeout`
seconds and may pause its body at most that long (408); every temporary file goes when its request ends.
"""

import asyncio
import math
import socket
import threading
from functools import partial
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from uvicorn import Config
from uvicorn.protocols.http.h11_impl import H11Protocol

from . import __version__
from .exceptions import AudioError, ParameterError, TooLong
from .palette import genre_colors
from .predict import Classifier, check_length, load
from .scoring import Stopped
from .upload import MB, UploadError, receive_upload

PAGE = Path(__file__).resolve().parent / "web" / "index.html"
DEFAULT_MAX_UPLOAD_MB = 200.0
DEFAULT_MAX_MINUTES = 20.0
DEFAULT_MAX_CONCURRENT = 2
DEFAULT_MAX_WAITING = 4
DEFAULT_TIMEOUT = 30.0
DEFAULT_MIN_UPLOAD_KBPS = 16.0
"""After its first `timeout` seconds an upload must have come at this many kB/s on average (a 10 MB song in
under 11 minutes)."""
DEFAULT_UPLOAD_SECONDS = 900.0
RETRY_AFTER_S = 5

UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary", "description": "An audio file."}}}}}}}


class ErrorBody(BaseModel):
    """What every failed request answers."""

    error: str


def _error(status, message, headers=None):
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _Admission:
    """At most `running` predictions at once and `waiting` more requests admitted; past that, 503."""

    def __init__(self, running, waiting):
        self.turns, self.limit, self.admitted = asyncio.Semaphore(running), running + waiting, 0

    def enter(self):
        if self.admitted >= self.limit:
            raise UploadError(503, f"busy: {self.limit} requests in progress; try again in {RETRY_AFTER_S} s",
                              {"Retry-After": str(RETRY_AFTER_S)})
        self.admitted += 1

    def leave(self):
        self.admitted -= 1


async def _until_disconnected(receive, stop):
    """Set `stop` once the client has gone (the body has been read: the next message is the disconnect)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    stop.set()


def _predict_upload(classifier, upload, max_seconds, stop):
    """The prediction of an upload no longer than `max_seconds` (413 otherwise), ended by `stop`."""
    if stop.is_set():  # the client left while waiting for its turn
        raise Stopped
    try:
        check_length(upload.path, max_seconds, stop=stop)
    except TooLong as error:
        raise UploadError(413, f"{upload.name}: {error.reason}") from None
    return classifier.predict(upload.path, duration=max_seconds, stop=stop)


def _validation_message(error):
    return "; ".join(f"{'.'.join(str(part) for part in problem['loc'][1:])}: {problem['msg']}"
                     for problem in error.errors())


def create_app(model=None, *, max_upload_mb=DEFAULT_MAX_UPLOAD_MB, max_minutes=DEFAULT_MAX_MINUTES,
               max_concurrent=DEFAULT_MAX_CONCURRENT, max_waiting=DEFAULT_MAX_WAITING, timeout=DEFAULT_TIMEOUT,
               min_upload_kbps=DEFAULT_MIN_UPLOAD_KBPS, upload_seconds=DEFAULT_UPLOAD_SECONDS):
    """The FastAPI app serving `model` (a path, a loaded `Classifier`, or None for the bundled model);
    uploads over `max_upload_mb` MB (2**20 bytes) or `max_minutes` of audio are refused with 413, bodies
    that pause for `timeout` s, come slower than `min_upload_kbps` kB/s after their first `timeout` s or
    take over `upload_seconds` with 408; `max_concurrent` and `max_waiting` bound the load (see above)."""
    for name, value in (("max_upload_mb", max_upload_mb), ("max_minutes", max_minutes), ("timeout", timeout),
                        ("max_concurrent", max_concurrent), ("min_upload_kbps", min_upload_kbps),
                        ("upload_seconds", upload_seconds)):
        if not 0 < value < math.inf:
            raise ParameterError(f"{name} must be a positive number, got {value}")
    if not max_waiting >= 0:
        raise ParameterError(f"max_waiting must be 0 or more, got {max_waiting}")
    classifier = model if isinstance(model, Classifier) else load(model)
    labels, max_bytes, model_name = classifier.labels, int(max_upload_mb * MB), Path(classifier.name).name
    admission = _Admission(max_concurrent, max_waiting)
    page = PAGE.read_text(encoding="utf-8")
    app = FastAPI(title="genrekit", version=__version__, description="Music genre prediction from audio.",
                  docs_url=None, redoc_url=None)  # the docs pages would load their scripts from a CDN
    app.state.classifier = classifier
    app.add_exception_handler(UploadError, lambda request, error: _error(error.status, str(error), error.headers))
    app.add_exception_handler(ClientDisconnect, lambda request, error: _error(499, "the client disconnected"))
    app.add_exception_handler(HTTPException, lambda request, error: _error(error.status_code, str(error.detail),
                                                                           error.headers))  # e.g. a 405's Allow
    app.add_exception_handler(RequestValidationError, lambda request, error: _error(422, _validation_message(error)))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index():
        return page

    @app.get("/api/health")
    def health():
        """The server is up; the model it serves (its name, not where it is) and its labels."""
        return {"status": "ok", "model": model_name, "model_version": classifier.version,
                "members": classifier.member_names, "labels": labels, "colors": genre_colors(labels),
                "max_upload_mb": max_upload_mb, "max_minutes": max_minutes, "version": __version__}

    @app.get("/api/labels")
    def label_list():
        """The genres the model tells apart."""
        return {"labels": labels}

    @app.post("/api/predict", openapi_extra=UPLOAD_BODY, responses={
        code: {"model": ErrorBody, "description": text} for code, text in (
            (400, "malformed upload"), (408, "the upload stalled"), (413, "upload over the size or length limit"),
            (415, "not multipart/form-data"), (422, "bad audio (empty, corrupt, unsupported format, silent) or bad "
                                                   "parameters"), (503, "busy: try again after Retry-After seconds"))})
    async def predict(request: Request,
                      top: Annotated[int, Query(ge=1, le=len(labels), description="How many genres to list.")]
                      = min(3, len(labels)),
                      timeline: Annotated[bool, Query(description="Also give probabilities per window.")] = False):
        """Genres of an uploaded song (form field `file`; any format genrekit reads, up to the length limit)."""
        admission.enter()
        try:
            async with receive_upload(request.headers, request.stream(), max_bytes=max_bytes, read_timeout=timeout,
                                      min_rate=min_upload_kbps * 1000, deadline=upload_seconds) as upload:
                stop = threading.Event()
                watcher = asyncio.create_task(_until_disconnected(request.receive, stop))
                try:
                    async with admission.turns:
                        result = await run_in_threadpool(_predict_upload, classifier, upload, max_minutes * 60, stop)
                except AudioError as error:
                    raise UploadError(422, str(AudioError(upload.name, error.reason))) from None
                except Stopped:
                    raise UploadError(499, f"{upload.name}: the client disconnected") from None
                finally:
                    watcher.cancel()
        finally:
            admission.leave()
        result.source = upload.name
        return {"file": upload.name, "model": model_name, "model_version": classifier.version,
                **result.to_dict(top=top, timeline=timeline)}

    return app


class _HeaderDeadline(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose next request headers are not complete within
    `header_timeout` seconds (of its opening, or of the previous response)."""

    def __init__(self, *args, header_timeout, **kwargs):
        super().__init__(*args, **kwargs)
        self.header_timeout, self.awaited_after, self.deadline = header_timeout, None, None

    def _arm(self):
        self.awaited_after = self.cycle  # headers are awaited while no newer cycle has started
        self.deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _expire(self):
        if self.cycle is self.awaited_after and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport):
        super().connection_made(transport)
        self._arm()

    def handle_events(self):
        super().handle_events()
        if self.cycle is not self.awaited_after:
            self.deadline.cancel()

    def on_response_complete(self):
        self.deadline.cancel()
        self._arm()  # before: a pipelined request may start in it
        super().on_response_complete()

    def connection_lost(self, exc):
        self.deadline.cancel()
        super().connection_lost(exc)


def listen(host="127.0.0.1", port=8000):
    """A socket bound to `host`:`port` for `uvicorn.Server.run(sockets=[...])`, or ParameterError with the
    address and the reason (e.g. already in use) before anything says the page is there."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as error:
        raise ParameterError(f"{host}:{port}: cannot listen there ({error.strerror or error})") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ParameterError(f"{host}:{port}: cannot listen there ({error.strerror or error})") from None
    return sock


def server_config(app, *, host="127.0.0.1", port=8000, timeout=DEFAULT_TIMEOUT, **kwargs):
    """uvicorn's `Config` for `app`: clients that do not finish their request headers within `timeout`
    seconds are disconnected (uvicorn alone waits for ever)."""
    return Config(app, host=host, port=port, http=partial(_HeaderDeadline, header_timeout=timeout),
                          **kwargs)
