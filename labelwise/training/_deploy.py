"""Azure OpenAI deployments: a model on Azure is called only through a deployment.

A fine-tuned model id (``gpt-4o-mini-2024-07-18.ft-<hex>``) is not callable until a deployment
serves it, and a deployment is made on the control plane (Azure Resource Manager), not the
inference endpoint: ``PUT .../accounts/{account}/deployments/{name}`` with the model's name,
format and version and a SKU, authorised by a bearer token for ``management.azure.com``
(Azure AI Foundry, "Deploy a fine-tuned model"; the ``Microsoft.CognitiveServices`` REST
reference). labelwise makes it when it has what that needs (``AZURE_SUBSCRIPTION_ID``,
``AZURE_RESOURCE_GROUP`` and a token in ``AZURE_MANAGEMENT_TOKEN``), and otherwise says exactly
what to run.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..backends import BackendSpec
from ..core import LabelwiseError, azure_management_url

__all__ = ["DeploymentNeeded", "DeploymentPlan", "deploy_model", "deployment_plan"]

MANAGEMENT_API_VERSION = "2024-10-01"
SUBSCRIPTION_ENV = "AZURE_SUBSCRIPTION_ID"
RESOURCE_GROUP_ENV = "AZURE_RESOURCE_GROUP"
TOKEN_ENV = "AZURE_MANAGEMENT_TOKEN"
# A fine-tuned model is deployed as version "1" of format "OpenAI", on the Standard SKU
# (capacity in thousands of tokens per minute).
_SKU = {"name": "standard", "capacity": 1}


class DeploymentNeeded(LabelwiseError):
    """Raised when a model needs a deployment that labelwise cannot make from here."""


@dataclass(frozen=True)
class DeploymentPlan:
    """Where a deployment goes: the Azure resource behind ``backend.base_url``."""

    deployment: str
    model: str
    account: str
    subscription: str | None
    resource_group: str | None

    @property
    def path(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/"
            f"Microsoft.CognitiveServices/accounts/{self.account}/deployments/{self.deployment}"
        )

    def commands(self) -> str:
        """What a person runs to make the deployment: the Azure CLI, or the REST call."""
        group = self.resource_group or "<resource-group>"
        subscription = self.subscription or "<subscription-id>"
        return (
            f"  az cognitiveservices account deployment create --subscription {subscription} "
            f"--resource-group {group} --name {self.account} --deployment-name {self.deployment} "
            f"--model-name {self.model} --model-version 1 --model-format OpenAI "
            f"--sku-name Standard --sku-capacity {_SKU['capacity']}\n"
            "or let labelwise make it: set "
            f"{SUBSCRIPTION_ENV}, {RESOURCE_GROUP_ENV} and {TOKEN_ENV} (az account get-access-token "
            "--resource https://management.azure.com --query accessToken -o tsv)"
        )


def deployment_plan(backend: BackendSpec, deployment: str, model: str) -> DeploymentPlan:
    """The plan for deploying ``model`` as ``deployment`` on the resource of ``backend``."""
    host = urlsplit(str(backend.base_url)).hostname or ""
    account = (
        host.split(".")[0] if host.endswith((".openai.azure.com", ".cognitiveservices.azure.com")) else host
    )
    return DeploymentPlan(
        deployment=deployment,
        model=model,
        account=account or "<account>",
        subscription=os.environ.get(SUBSCRIPTION_ENV) or None,
        resource_group=os.environ.get(RESOURCE_GROUP_ENV) or None,
    )


async def deploy_model(
    plan: DeploymentPlan,
    *,
    timeout_s: float = 1800.0,
    poll_s: float = 10.0,
    on_step: Callable[[str], None] | None = None,
) -> None:
    """Create (or find) the deployment and wait until it serves; ``DeploymentNeeded`` names the
    command to run when the subscription, resource group or token is missing."""
    token = os.environ.get(TOKEN_ENV)
    if not (plan.subscription and plan.resource_group and token):
        missing = [n for n, v in ((SUBSCRIPTION_ENV, plan.subscription), (RESOURCE_GROUP_ENV,
                   plan.resource_group), (TOKEN_ENV, token)) if not v]  # fmt: skip
        raise DeploymentNeeded(
            f"Azure serves {plan.model} only through a deployment, and {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set, so labelwise cannot make "
            f"deployment {plan.deployment}. Make it:\n{plan.commands()}\nthen run the same command again"
        )
    url = f"{azure_management_url()}{plan.path}"
    params = {"api-version": MANAGEMENT_API_VERSION}
    headers = {"Authorization": f"Bearer {token}"}
    body = {"sku": _SKU, "properties": {"model": {"format": "OpenAI", "name": plan.model, "version": "1"}}}
    async with httpx.AsyncClient(timeout=60.0, headers=headers) as client:
        current = await client.get(url, params=params)
        if current.status_code == 200 and _model_of(current.json()) not in (None, plan.model):
            raise LabelwiseError(
                f"deployment {plan.deployment} on {plan.account} serves {_model_of(current.json())}, "
                f"not {plan.model}: choose another --deploy name"
            )
        if current.status_code != 200:
            created = await client.put(url, params=params, json=body)
            _raise_for(created, plan)
            if on_step is not None:
                on_step(f"creating deployment {plan.deployment} of {plan.model} on {plan.account}")
        deadline = time.monotonic() + timeout_s
        while True:
            state = await client.get(url, params=params)
            _raise_for(state, plan)
            provisioning = str(state.json().get("properties", {}).get("provisioningState", ""))
            if provisioning == "Succeeded":
                return
            if provisioning in ("Failed", "Canceled"):
                raise LabelwiseError(f"deployment {plan.deployment} ended {provisioning}: {state.text[:300]}")
            if time.monotonic() > deadline:
                raise LabelwiseError(
                    f"deployment {plan.deployment} is still {provisioning} after {timeout_s:.0f} s; run the "
                    "same command again once it has succeeded"
                )
            await asyncio.sleep(poll_s)


def _model_of(deployment: dict[str, Any]) -> str | None:
    name = deployment.get("properties", {}).get("model", {}).get("name")
    return None if name is None else str(name)


def _raise_for(response: httpx.Response, plan: DeploymentPlan) -> None:
    if response.status_code < 400:
        return
    if response.status_code in (401, 403):
        raise DeploymentNeeded(
            f"Azure Resource Manager refused the token in {TOKEN_ENV} (HTTP {response.status_code}): it "
            f"needs the Cognitive Services Contributor role on {plan.account}. Or make the deployment:\n"
            f"{plan.commands()}"
        )
    raise LabelwiseError(
        f"Azure Resource Manager could not deploy {plan.model} as {plan.deployment} "
        f"(HTTP {response.status_code}): {response.text[:300]}"
    )
