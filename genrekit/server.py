"""The web page and HTTP API for genre prediction (`genrekit serve`).

`create_app` loads the classifier once and serves:

- `POST /api/predict`: a multipart upload (form field `file`, any format genrekit reads) -> the
  prediction as `genrekit predict --format json` gives it, `source` being the upload's file name;
- `GET /api/health`, `GET /api/labels`; `GET /openapi.json` describes the API;
- `GET /`: a self-contained page (genrekit/web/index.html) that posts files to the API.

Every error is JSON `{"error": "one line"}`; bad audio gives 422 with the line `genrekit predict` prints
(`FILE: reason`). Uploads are streamed to a temporary file (see `genrekit.upload`) and predicted in a
worker thread, so the event loop keeps serving other requests meanwhile.
"""

from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from . import __version__
from .exceptions import AudioError, ParameterError
from .predict import Classifier, load
from .upload import MB, UploadError, receive_upload

PAGE = Path(__file__).resolve().parent / "web" / "index.html"
DEFAULT_MAX_UPLOAD_MB = 200.0

UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary", "description": "An audio file."}}}}}}}


class ErrorBody(BaseModel):
    """What every failed request answers."""

    error: str


def _error(status, message):
    return JSONResponse({"error": message}, status_code=status)


def _validation_message(error):
    return "; ".join(f"{'.'.join(str(part) for part in problem['loc'][1:])}: {problem['msg']}"
                     for problem in error.errors())


def create_app(model=None, *, max_upload_mb=DEFAULT_MAX_UPLOAD_MB):
    """The FastAPI app serving `model` (a path, a loaded `Classifier`, or None for the bundled model);
    uploads over `max_upload_mb` MB (2**20 bytes) are refused with 413."""
    if not max_upload_mb > 0:
        raise ParameterError(f"max_upload_mb must be positive, got {max_upload_mb}")
    classifier = model if isinstance(model, Classifier) else load(model)
    labels, max_bytes = classifier.labels, int(max_upload_mb * MB)
    page = PAGE.read_text(encoding="utf-8")
    app = FastAPI(title="genrekit", version=__version__, description="Music genre prediction from audio.",
                  docs_url=None, redoc_url=None)  # the docs pages would load their scripts from a CDN
    app.state.classifier = classifier
    app.add_exception_handler(UploadError, lambda request, error: _error(error.status, str(error)))
    app.add_exception_handler(HTTPException, lambda request, error: _error(error.status_code, str(error.detail)))
    app.add_exception_handler(RequestValidationError, lambda request, error: _error(422, _validation_message(error)))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index():
        return page

    @app.get("/api/health")
    def health():
        """The server is up; the model it serves and its labels."""
        return {"status": "ok", "model": classifier.name, "members": classifier.member_names, "labels": labels,
                "max_upload_mb": max_upload_mb, "version": __version__}

    @app.get("/api/labels")
    def label_list():
        """The genres the model tells apart."""
        return {"labels": labels}

    @app.post("/api/predict", openapi_extra=UPLOAD_BODY, responses={
        code: {"model": ErrorBody, "description": text} for code, text in (
            (400, "malformed upload"), (413, "upload over the size limit"), (415, "not multipart/form-data"),
            (422, "bad audio (empty, corrupt, unsupported format, silent) or bad parameters"))})
    async def predict(request: Request,
                      top: Annotated[int, Query(ge=1, le=len(labels), description="How many genres to list.")]
                      = min(3, len(labels)),
                      timeline: Annotated[bool, Query(description="Also give probabilities per window.")] = False):
        """Genres of an uploaded song (form field `file`; any length, any format genrekit reads)."""
        async with receive_upload(request.headers, request.stream(), max_bytes=max_bytes) as upload:
            try:
                result = await run_in_threadpool(classifier.predict, upload.path)
            except AudioError as error:
                raise UploadError(422, str(AudioError(upload.name, error.reason))) from None
        result.source = upload.name
        return {"file": upload.name, **result.to_dict(top=top, timeline=timeline)}

    return app
