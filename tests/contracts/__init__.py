"""The providers' published API descriptions, and a check of every exchange against them.

``openai.json`` is cut from OpenAI's OpenAPI description and ``azure_openai.json`` from Azure
OpenAI's authoring specification (each records its source and commit; see ``vendor.py``). The
fake server validates every request labelwise sends and every successful answer it gives
against the description of its mode, with openapi-core, and fails the test that used it on the
first exchange that does not validate.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

__all__ = ["Contract", "contract_for"]

HERE = Path(__file__).parent


class Contract:
    """One provider's description, and the exchanges seen that break it."""

    def __init__(self, name: str) -> None:
        from openapi_core import Config, OpenAPI

        self.name = name
        document = json.loads((HERE / f"{name}.json").read_text())
        self.prefix = document["servers"][0]["url"]
        # The first segment of each path described ("/files", "/fine_tuning"): others are not checked.
        self.roots = sorted({self.prefix + "/" + path.split("/")[1] for path in document["paths"]})
        self.api_version = (
            document["info"]["version"] if "api-version" in json.dumps(document["paths"]) else None
        )
        # The published descriptions do not themselves pass the OpenAPI validator (defaults of
        # null on objects that are not nullable): instances are checked, the description is not.
        config = Config(
            spec_validator_cls=None,
            extra_media_type_deserializers={
                "multipart/form-data": _form_with_text_files,
                "application/octet-stream": _bytes_as_text,
            },
        )
        self.api = OpenAPI.from_dict(document, config=config)
        self.violations: list[str] = []

    def covers(self, path: str, query: dict[str, str]) -> bool:
        """Whether an exchange at ``path`` is described (Azure's: for its own api-version only)."""
        if self.api_version is not None and query.get("api-version") != self.api_version:
            return False
        return any(path == root or path.startswith(root + "/") for root in self.roots)

    def check_request(self, request: Any) -> None:
        """Record why ``request`` (an openapi-core request) breaks the description, if it does."""
        self._check(request, None)

    def check_response(self, request: Any, response: Any) -> None:
        self._check(request, response)

    def _check(self, request: Any, response: Any | None) -> None:
        from openapi_core.exceptions import OpenAPIError

        try:
            if response is None:
                self.api.validate_request(request)
            else:
                self.api.validate_response(request, response)
        except (OpenAPIError, ValueError, TypeError, AttributeError) as exc:
            what = "request" if response is None else f"answer {response.status_code}"
            self.violations.append(f"{request.method.upper()} {request.path} {what}: {_reasons(exc)}")


def _bytes_as_text(body: bytes | str, **parameters: Any) -> str:
    """File content as text: the descriptions type it as a string."""
    return body if isinstance(body, str) else body.decode("utf-8", errors="replace")


def _form_with_text_files(body: bytes, **parameters: Any) -> dict[str, Any]:
    """A multipart body as its fields, each uploaded file as text: the descriptions type an upload
    as a string (``format: binary``), which a JSON Schema validator checks as text."""
    from email.parser import BytesParser
    from email.policy import HTTP

    boundary = parameters.get("boundary", "")
    head = f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    fields: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        value: Any = (part.get_payload(decode=True) or b"").decode("utf-8", errors="replace")
        if "[" in name and name.endswith("]"):  # a nested field, "expires_after[seconds]"
            outer, inner = name[:-1].split("[", 1)
            nested.setdefault(outer, {})[inner] = int(value) if value.isdigit() else value
        else:
            fields[name] = value
    # An object part is read as JSON (OpenAPI's default content type for one).
    return {**fields, **{name: json.dumps(value) for name, value in nested.items()}}


def _reasons(exc: BaseException) -> str:
    details = []
    cause: BaseException | None = exc
    while cause is not None:
        for error in getattr(cause, "schema_errors", None) or []:
            details.append(f"{error.message} at {'/'.join(str(p) for p in error.absolute_path)}")
        cause = cause.__cause__
    if details:
        return "; ".join(details)
    try:
        return f"{type(exc).__name__}: {exc}"[:500]
    except Exception:  # noqa: BLE001 (some of openapi-core's errors cannot print themselves)
        return type(exc).__name__


@functools.cache
def _shared(name: str) -> Contract:
    return Contract(name)


def contract_for(name: str) -> Contract:
    """A fresh record of violations over the (cached, parsed once) description ``name``."""
    shared = _shared(name)
    contract = Contract.__new__(Contract)
    contract.name, contract.prefix, contract.api, contract.violations = name, shared.prefix, shared.api, []
    contract.roots, contract.api_version = shared.roots, shared.api_version
    return contract
