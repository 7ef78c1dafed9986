"""Receiving an uploaded file: a multipart/form-data body streamed to a temporary file, capped in size.

The body is parsed as it arrives, so memory stays bounded and an upload over the cap is refused as soon as
it crosses it (at once when its Content-Length already says so); the whole body counts, not only the file,
so neither chunked encoding nor other form fields get around the cap. The temporary file keeps the upload's
extension, since some decoders go by it, and is removed when the `receive_upload` block ends.
"""

import asyncio
import os
import re
import tempfile
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

MB = 1024 * 1024
MULTIPART_SLACK = 64 * 1024
"""Bytes a multipart body may hold beyond its file (boundaries, part headers, small fields)."""

TEMP_PREFIX = "genrekit-upload-"


class UploadError(Exception):
    """An upload refused; `status` is the HTTP status to answer with, the message says why in one line."""

    def __init__(self, status, message, headers=None):
        self.status, self.headers = status, headers
        super().__init__(message)


@dataclass(frozen=True)
class Upload:
    """A received file: the client's name for it (no folders) and where its bytes are."""

    name: str
    path: Path


def _client_name(filename):
    """The base name of a file name a client sent, without folders or control characters."""
    name = PurePosixPath(filename.replace("\\", "/")).name
    return re.sub(r"[\x00-\x1f\x7f]", "", name).strip()


def _suffix(name):
    suffix = Path(name).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def _megabytes(n):
    return f"{n / MB:.4g} MB"


class _Receiver:
    """multipart parser callbacks writing the part named `field` to a temporary file."""

    def __init__(self, field, max_bytes):
        self.field, self.max_bytes = field.encode(), max_bytes
        self.name, self.path, self.size, self.out = None, None, 0, None
        self.header_name, self.header_value, self.disposition, self.in_file = b"", b"", b"", False

    def callbacks(self):
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field,
                "on_header_value": self.header_data, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
                "on_part_end": self.part_end}

    def part_begin(self):
        self.disposition, self.in_file = b"", False

    def header_field(self, data, start, end):
        self.header_name += data[start:end]

    def header_data(self, data, start, end):
        self.header_value += data[start:end]

    def header_end(self):
        if self.header_name.strip().lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name, self.header_value = b"", b""

    def headers_finished(self):
        _, options = parse_options_header(self.disposition)
        if options.get(b"name") != self.field or not options.get(b"filename"):
            return  # another field, or a file input left empty: skipped
        if self.path is not None:
            raise UploadError(422, f"send one file per request (form field {self.field.decode()!r})")
        self.name = _client_name(options[b"filename"].decode("utf-8", "replace")) or "upload"
        handle, path = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=_suffix(self.name))
        self.path, self.out, self.in_file = Path(path), os.fdopen(handle, "wb"), True

    def part_data(self, data, start, end):
        if not self.in_file:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            raise UploadError(413, f"{self.name}: larger than the upload limit of {_megabytes(self.max_bytes)}")
        self.out.write(data[start:end])

    def part_end(self):
        if self.in_file:
            self.out.close()
            self.in_file = False


async def _next(chunks, timeout):
    """The next chunk, or None at the end; `UploadError` 408 when none comes within `timeout` seconds."""
    try:
        return await asyncio.wait_for(anext(chunks, None), timeout)
    except TimeoutError:
        raise UploadError(408, f"the upload stalled: nothing received for {timeout:g} s",
                          {"Connection": "close"}) from None


def _check_pace(received, began, read_timeout, min_rate, deadline):
    """`UploadError` 408 for a body past its `deadline` (seconds), or one that after its first `read_timeout`
    seconds has come at under `min_rate` bytes per second on average: a client that trickles its upload
    loses its own slot instead of holding it."""
    elapsed = asyncio.get_running_loop().time() - began
    if deadline and elapsed > deadline:
        raise UploadError(408, f"the upload took longer than {deadline:g} s", {"Connection": "close"})
    if min_rate and elapsed > (read_timeout or 0) and received < min_rate * elapsed:
        raise UploadError(408, f"the upload is too slow: {received / elapsed:.0f} bytes/s on average, the minimum "
                               f"is {min_rate:g}", {"Connection": "close"})


@asynccontextmanager
async def receive_upload(headers, chunks, *, max_bytes, field="file", read_timeout=None, min_rate=None,
                         deadline=None):
    """Stream the file in form field `field` of a multipart request (its `headers` and async iterator of
    body `chunks`) to a temporary file; yield it as an `Upload`, and remove the file when the block ends
    (whatever ends it: an error, a timeout, the client leaving).

    Raises `UploadError`: 413 over `max_bytes`, 415 not multipart/form-data, 400 malformed, 422 no file
    or more than one, 408 (with `Connection: close`) when no chunk came for `read_timeout` seconds, when the
    body comes at under `min_rate` bytes per second after its first `read_timeout` seconds, or when it is not
    all there after `deadline` seconds.
    """
    mime, options = parse_options_header(headers.get("content-type", ""))
    if mime != b"multipart/form-data" or not options.get(b"boundary"):
        raise UploadError(415, f"send the audio as multipart/form-data, in the form field {field!r}")
    length, max_body = headers.get("content-length", ""), max_bytes + MULTIPART_SLACK
    if length.isdigit() and int(length) > max_body:
        raise UploadError(413, f"upload of {_megabytes(int(length))} is larger than the upload limit of "
                               f"{_megabytes(max_bytes)}")
    receiver, received, began = _Receiver(field, max_bytes), 0, asyncio.get_running_loop().time()
    try:
        try:
            parser = MultipartParser(options[b"boundary"], receiver.callbacks())
            chunks = aiter(chunks)
            while (chunk := await _next(chunks, read_timeout)) is not None:
                parser.write(chunk)  # first: an over-long file is named
                received += len(chunk)
                if received > max_body:
                    raise UploadError(413, f"upload larger than the upload limit of {_megabytes(max_bytes)}")
                _check_pace(received, began, read_timeout, min_rate, deadline)
            parser.finalize()
        except FormParserError as error:  # a malformed body, or a boundary over 256 characters
            raise UploadError(400, f"malformed multipart body ({error})") from None
        if receiver.path is None:
            raise UploadError(422, f"no file in the request: send it in the form field {field!r}")
        if receiver.in_file:
            raise UploadError(400, f"{receiver.name}: the upload ended before the file did")
        yield Upload(receiver.name, receiver.path)
    finally:
        if receiver.out is not None:
            receiver.out.close()
        if receiver.path is not None:
            receiver.path.unlink(missing_ok=True)
