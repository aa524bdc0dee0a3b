"""OpenAI's Files API as the fake OpenAI server serves it, shared by its Batch and fine-tuning APIs.

Uploads (multipart, with a purpose), retrieval and content; files the fake itself writes (batch
output, fine-tuning results) are added with ``add``. ``calls`` counts each API call by name, and
is shared with the APIs that use these files, so that one counter tells what a job cost.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["FakeFiles", "error_response", "jsonl"]

UPLOAD_PURPOSES = frozenset({"batch", "fine-tune"})


class FakeFiles:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.calls: Counter[str] = Counter()
        self.deleted: list[str] = []
        self.processing_s = 0.1
        """Azure validates an uploaded fine-tune file before a job may use it: ``pending`` this long."""
        self._ready_at: dict[str, float] = {}
        self.expiry: dict[str, dict[str, str]] = {}
        """``expires_after`` asked for each uploaded file."""

    def add(self, name: str, content: bytes, *, purpose: str) -> dict[str, Any]:
        """Store a file and return its record (``id``, ``bytes``, ``purpose``, ...)."""
        file_id = f"file-{len(self.records) + 1}"
        self.contents[file_id] = content
        self.records[file_id] = {"id": file_id, "object": "file", "bytes": len(content),
                                 "created_at": int(time.time()), "filename": name, "purpose": purpose,
                                 "status": "processed"}  # fmt: skip
        return self.records[file_id]

    def processed(self, file_id: str) -> bool:
        return time.monotonic() >= self._ready_at.get(file_id, 0.0)

    def public(self, file_id: str) -> dict[str, Any]:
        """The file's record as the API shows it now (``pending`` until processed)."""
        return {**self.records[file_id], "status": "processed" if self.processed(file_id) else "pending"}

    def routes(self, root: str) -> list[Any]:
        return [
            Route(f"{root}/files", self._create, methods=["POST"]),
            Route(f"{root}/files/{{file_id}}", self._retrieve),
            Route(f"{root}/files/{{file_id}}", self._delete, methods=["DELETE"]),
            Route(f"{root}/files/{{file_id}}/content", self._content),
        ]

    async def _create(self, request: Any) -> Any:

        self.calls["files.create"] += 1
        async with request.form() as form:
            upload, purpose = form["file"], form.get("purpose")
            content, name = await upload.read(), upload.filename
            expiry = {
                k[len("expires_after[") : -1]: str(v)
                for k, v in form.items()
                if k.startswith("expires_after[")
            }
        if purpose not in UPLOAD_PURPOSES:
            return error_response(400, f"purpose must be one of {sorted(UPLOAD_PURPOSES)}, not {purpose!r}")
        # Azure answers a created file with 201, OpenAI with 200.
        status = 201 if request.url.path.startswith("/openai/") else 200
        record = self.add(name, content, purpose=str(purpose))
        if request.url.path.startswith("/openai/") and purpose == "fine-tune":
            self._ready_at[record["id"]] = time.monotonic() + self.processing_s
            record = self.public(record["id"])
        if expiry:
            self.expiry[record["id"]] = expiry
        return JSONResponse(record, status_code=status)

    async def _retrieve(self, request: Any) -> Any:

        self.calls["files.retrieve"] += 1
        file_id = request.path_params["file_id"]
        if file_id not in self.records:
            return error_response(404, f"no file {file_id}")
        return JSONResponse(self.public(file_id))

    async def _delete(self, request: Any) -> Any:
        self.calls["files.delete"] += 1
        file_id = request.path_params["file_id"]
        if self.records.pop(file_id, None) is None:
            return error_response(404, f"no file {file_id}")
        self.contents.pop(file_id, None)
        self.deleted.append(file_id)
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})

    async def _content(self, request: Any) -> Any:

        self.calls["files.content"] += 1
        file_id = request.path_params["file_id"]
        if file_id not in self.contents:
            return error_response(404, f"no file {file_id}")
        return Response(self.contents[file_id], media_type="application/octet-stream")


def jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def error_response(status: int, message: str, *, code: str | None = None) -> Any:
    error = {"message": message, "type": "invalid_request_error", "code": code}
    return JSONResponse({"error": error}, status_code=status)
