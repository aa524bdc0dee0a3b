"""What the fake OpenAI server's models accept and how they answer, as OpenAI documents it.

Written from the provider's documentation, not from labelwise's own table (``backends._models``),
so that a test against the fake checks labelwise's table instead of repeating it:

- reasoning families (o1, o3, o4-mini, gpt-5 and its minis) answer HTTP 400 ``unsupported_parameter``
  to ``max_tokens`` ("Use 'max_completion_tokens' instead"), to ``logprobs``/``top_logprobs``/
  ``logit_bias``, ``top_p`` and ``stop``, and ``unsupported_value`` to a temperature other than 1;
  their ``max_completion_tokens`` covers reasoning tokens too, so an answer that runs out while
  thinking comes back empty with ``finish_reason: length``;
- models before structured outputs (gpt-3.5-turbo, gpt-4-turbo) refuse a ``json_schema``
  response format;
- logprobs come back for the first token with ``top_logprobs`` alternatives after ``logit_bias``
  (biased tokens lead the list), at most 20 on chat and 5 on the legacy completions endpoint.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["Refusal", "answer_shape", "chat_logprobs", "check_parameters", "completion_logprobs"]

REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
NO_SCHEMA_PREFIXES = ("gpt-3.5", "gpt-4-", "gpt-4-turbo", "davinci-002", "babbage-002")
REASONING_TOKENS = 192  # what the fake's reasoning models spend thinking about one text


class Refusal(Exception):  # noqa: N818 (an answer, not a bug)
    """An HTTP error answer, as the provider words it."""

    def __init__(self, status: int, message: str, *, param: str | None, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {
            "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
        }


def is_reasoning(model: str) -> bool:
    base = model.removeprefix("ft:")
    return base.startswith(REASONING_PREFIXES)


def check_parameters(path: str, body: dict[str, Any]) -> None:
    """Raise ``Refusal`` for what the model named in ``body`` does not take."""
    model = str(body.get("model", ""))
    if is_reasoning(model):
        for param in ("max_tokens", "logprobs", "top_logprobs", "logit_bias", "top_p", "stop"):
            if body.get(param) not in (None, False):
                hint = " Use 'max_completion_tokens' instead." if param == "max_tokens" else ""
                message = f"Unsupported parameter: '{param}' is not supported with this model.{hint}"
                raise Refusal(400, message, param=param, code="unsupported_parameter")
        if body.get("temperature") not in (None, 1, 1.0):
            raise Refusal(400, "Unsupported value: 'temperature' does not support "
                          f"{body['temperature']} with this model. Only the default (1) value is supported.",
                          param="temperature", code="unsupported_value")  # fmt: skip
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema" and model.startswith(NO_SCHEMA_PREFIXES):
        raise Refusal(400, "Invalid parameter: 'response_format' of type 'json_schema' is not supported "
                      "with this model.", param="response_format", code="invalid_parameter")  # fmt: skip
    if path.endswith("/completions") and not path.endswith("/chat/completions"):
        if (body.get("logprobs") or 0) > 5:
            raise Refusal(400, "Invalid value for 'logprobs': must be less than or equal to 5.",
                          param="logprobs", code="invalid_value")  # fmt: skip


def answer_shape(body: dict[str, Any], answer: str) -> tuple[str, str, int]:
    """The content, finish reason and reasoning tokens of an answer to ``body``."""
    if (body.get("response_format") or {}).get("type") in ("json_schema", "json_object"):
        answer = json.dumps({"label": answer})
    if not is_reasoning(str(body.get("model", ""))):
        return answer, "stop", 0
    budget = body.get("max_completion_tokens")
    if budget is not None and budget < REASONING_TOKENS + 8:
        return "", "length", min(budget, REASONING_TOKENS)  # thought until the budget ran out
    return answer, "stop", REASONING_TOKENS


def chat_logprobs(answer: str, body: dict[str, Any], decode: Any) -> dict[str, Any] | None:
    """``choices[0].logprobs`` of a chat answer: the first token and its alternatives."""
    if not body.get("logprobs"):
        return None
    alternatives = _alternatives(answer, body, decode, int(body.get("top_logprobs") or 0))
    first = {"token": alternatives[0][0], "logprob": alternatives[0][1],
             "bytes": list(alternatives[0][0].encode())}  # fmt: skip
    top = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in alternatives]
    return {"content": [{**first, "top_logprobs": top}], "refusal": None}


def completion_logprobs(answer: str, body: dict[str, Any], decode: Any) -> dict[str, Any] | None:
    """``choices[0].logprobs`` of a legacy completion."""
    count = int(body.get("logprobs") or 0)
    if not count:
        return None
    alternatives = _alternatives(answer, body, decode, count)
    return {"tokens": [alternatives[0][0]], "token_logprobs": [alternatives[0][1]],
            "top_logprobs": [dict(alternatives)], "text_offset": [0]}  # fmt: skip


def _alternatives(answer: str, body: dict[str, Any], decode: Any, count: int) -> list[tuple[str, float]]:
    """The answer's token first (0.7), then the biased tokens, then filler, ``count`` in all."""
    biased = [decode(int(token_id)) for token_id in (body.get("logit_bias") or {})]
    others = [t for t in biased if t.strip() != answer.strip()]
    share = 0.3 / max(1, len(others))
    ranked = [(answer, math.log(0.7))] + [(t, math.log(share)) for t in others]
    ranked += [(f"<filler {i}>", math.log(1e-4)) for i in range(max(0, count - len(ranked)))]
    return ranked[: max(1, count)]
