"""Request models: the JSON of a new upload session and the headers of the upload PUTs.

They are validated explicitly in the routes, after the API key dependency: FastAPI reads a
declared body before it runs dependencies, which would let anyone without a key make the
server parse (and hold) a body. Every validation problem is a 400 naming the field.
"""
from __future__ import annotations

import re
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, ValidationError
from starlette.requests import Request

from ..errors import Refusal
from ..names import name_problem

MAX_KEEP_DAYS = 36500
MAX_KEY_CHARS = 1024
MAX_JSON_BYTES = 64 << 10
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
RANGE_RE = re.compile(r"^bytes (?:(\d+)-(\d+)|\*)/(\d+)$")


def _sha256(value: str) -> str:
    if not SHA256_RE.match(value.lower()):
        raise ValueError("sha256 must be 64 hexadecimal digits")
    return value.lower()


def checked_name(value: str) -> str:
    problem = name_problem(value)
    if problem:
        raise ValueError(f"invalid file name: {problem}")
    return value


Sha256 = Annotated[str, AfterValidator(_sha256)]
FileName = Annotated[str, AfterValidator(checked_name)]
KeepDays = Annotated[float, Field(ge=0, le=MAX_KEEP_DAYS, allow_inf_nan=False)]
UploadKey = Annotated[str, Field(min_length=1, max_length=MAX_KEY_CHARS)]


class UploadSpec(BaseModel):
    """POST /api/uploads: what is about to be sent. The checksum may come later (X-Sha256)."""

    name: FileName
    size: StrictInt = Field(ge=0)
    sha256: Sha256 | None = None
    keep_days: KeepDays | None = 0
    upload_key: UploadKey | None = None


class OneShotHeaders(BaseModel):
    """PUT /api/files/{name}: the whole file in one body."""

    model_config = ConfigDict(extra="ignore")
    sha256: Sha256 = Field(alias="x-sha256")
    keep_days: KeepDays = Field(0, alias="x-keep-days")
    upload_key: UploadKey | None = Field(None, alias="x-upload-key")


class RangeHeaders(BaseModel):
    """PUT /api/uploads/{id}: one byte range; `bytes */SIZE` with no body finishes a complete upload."""

    model_config = ConfigDict(extra="ignore")
    content_range: str = Field(alias="content-range", pattern=RANGE_RE.pattern)
    content_length: int = Field(0, alias="content-length", ge=0)
    sha256: Sha256 | None = Field(None, alias="x-sha256")

    @property
    def span(self) -> tuple[int, int, int]:
        """(start, end exclusive, total); start == end for the no-body form."""
        first, last, total = RANGE_RE.match(self.content_range).groups()
        if first is None:
            return int(total), int(total), int(total)
        return int(first), int(last) + 1, int(total)


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data) -> M:
    """Validate `data` (a mapping or JSON text) as `model`; 400 naming each problem otherwise."""
    try:
        if isinstance(data, (bytes, str)):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in err["loc"])
            what = err["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {what}" if where else what)
        raise Refusal(400, "; ".join(problems)) from None


async def small_json(request: Request) -> bytes:
    """A JSON request body of at most MAX_JSON_BYTES (413 beyond), read after authentication."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise Refusal(413, f"request body larger than {MAX_JSON_BYTES} bytes")
    return bytes(body)
