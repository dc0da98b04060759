"""The baseline the registry benchmarks divide by: a bare Litestar app on the same uvicorn, with
one JSON route shaped like a resolve answer and one upload route that reads the same multipart
body a publish does (and does nothing else).

    uvicorn --app-dir bench bare_app:app
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Litestar, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

_VERSION = {
    "namespace": "bench",
    "name": "e0",
    "ref": "bench/e0@1",
    "number": 1,
    "digest": "sha256:" + "0" * 64,
    "size": 3248,
    "family": "sd1",
    "base_model": None,
    "vectors": 1,
    "encoders": {"emb_params": [1, 768]},
    "dtype": "F32",
    "source_format": "canonical",
    "upload_sha256": "0" * 64,
    "trigger": "<e0>",
    "notes": "",
    "training": None,
    "yanked": False,
    "created_at": "2025-01-01T00:00:00+00:00",
    "created_by": 1,
    "tags": ["latest", "stable"],
}


@get("/bare", sync_to_thread=False)
def bare() -> dict[str, Any]:
    return _VERSION


@post("/bare/upload", status_code=201)
async def bare_upload(
    data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
) -> dict[str, Any]:
    part = data.get("file")
    size = len(await part.read()) if hasattr(part, "read") else 0
    return {"size": size}


app = Litestar(route_handlers=[bare, bare_upload])
