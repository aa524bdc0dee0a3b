"""Azure OpenAI's deployments, as the fake serves them: made on the control plane (Azure Resource
Manager), called on the data plane at ``/openai/deployments/{name}/...``.

``PUT`` and ``GET`` of ``/subscriptions/{s}/resourceGroups/{g}/providers/
Microsoft.CognitiveServices/accounts/{a}/deployments/{name}`` need a bearer token; a deployment
is ``Creating`` for ``step_s`` seconds, then ``Succeeded``. Only a model the fake knows (a base
model, or one its fine-tuning made) deploys; a call to a deployment that does not exist, or is
not ready, answers 404 ``DeploymentNotFound`` as Azure does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse
from starlette.routing import Route

from .fake_files import error_response

__all__ = ["FakeDeployments"]

MANAGEMENT = (
    "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.CognitiveServices"
    "/accounts/{account}/deployments/{name}"
)


class FakeDeployments:
    def __init__(self, known_model: Callable[[str], bool], *, step_s: float = 0.05) -> None:
        self.known_model = known_model
        self.step_s = step_s
        self.deployments: dict[str, dict[str, Any]] = {}
        self.calls: dict[str, int] = {"put": 0, "get": 0}

    def deploy(self, name: str, model: str) -> None:
        """Deploy ``model`` as ``name`` at once (a deployment made outside the test)."""
        self.deployments[name] = {"model": model, "created": time.monotonic() - self.step_s}

    def model_of(self, name: str) -> str | None:
        """The model a ready deployment serves; ``None`` when there is none (or not yet)."""
        found = self.deployments.get(name)
        if found is None or self._state(found) != "Succeeded":
            return None
        return str(found["model"])

    def routes(self) -> list[Any]:
        return [Route(MANAGEMENT, self._put, methods=["PUT"]), Route(MANAGEMENT, self._get, methods=["GET"])]

    def _state(self, deployment: dict[str, Any]) -> str:
        return "Succeeded" if time.monotonic() - deployment["created"] >= self.step_s else "Creating"

    def _resource(self, request: Any, name: str) -> dict[str, Any]:
        found = self.deployments[name]
        p = request.path_params
        return {
            "id": request.url.path, "name": name, "type": "Microsoft.CognitiveServices/accounts/deployments",
            "sku": {"name": "Standard", "capacity": found.get("capacity", 1)},
            "properties": {"model": {"format": "OpenAI", "name": found["model"], "version": "1"},
                           "provisioningState": self._state(found)},
            "account": p["account"],
        }  # fmt: skip

    @staticmethod
    def _authorised(request: Any) -> bool:
        return request.headers.get("authorization", "").startswith("Bearer ") and bool(
            request.query_params.get("api-version")
        )

    async def _put(self, request: Any) -> Any:
        self.calls["put"] += 1
        if not self._authorised(request):
            return error_response(401, "Authentication failed: a bearer token and api-version are needed")
        body = await request.json()
        model = (body.get("properties") or {}).get("model") or {}
        if model.get("format") != "OpenAI" or not model.get("name") or not body.get("sku", {}).get("name"):
            return error_response(
                400, "a deployment needs sku.name and properties.model {format: OpenAI, name}"
            )
        if not self.known_model(str(model["name"])):
            return error_response(400, f"model {model['name']} is not available to this resource")
        name = request.path_params["name"]
        self.deployments[name] = {"model": model["name"], "created": time.monotonic(),
                                  "capacity": body["sku"].get("capacity", 1)}  # fmt: skip
        return JSONResponse(self._resource(request, name), status_code=201)

    async def _get(self, request: Any) -> Any:
        self.calls["get"] += 1
        if not self._authorised(request):
            return error_response(401, "Authentication failed: a bearer token and api-version are needed")
        name = request.path_params["name"]
        if name not in self.deployments:
            return error_response(404, f"deployment {name} not found", code="DeploymentNotFound")
        return JSONResponse(self._resource(request, name))
