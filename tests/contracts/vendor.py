"""Cut the parts labelwise uses out of a provider's published API description.

    python -m tests.contracts.vendor openai PATH/TO/openai-openapi/openapi.json COMMIT

keeps the operations in ``OPERATIONS`` and every component they reference, and records where
they came from (``x-labelwise-source``), so that the copy under ``tests/contracts`` can be
refreshed from a newer description and the difference read in review. The OpenAI description
is OpenAPI 3.1 (github.com/openai/openai-openapi); Azure's authoring specification is Swagger
2.0 and is cut by hand into ``azure_openai.json`` (see its ``x-labelwise-source``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent

OPERATIONS: dict[str, list[str]] = {
    "/chat/completions": ["post"],
    "/completions": ["post"],
    "/embeddings": ["post"],
    "/models": ["get"],
    "/files": ["post", "get"],
    "/files/{file_id}": ["get", "delete"],
    "/files/{file_id}/content": ["get"],
    "/batches": ["post", "get"],
    "/batches/{batch_id}": ["get"],
    "/batches/{batch_id}/cancel": ["post"],
    "/fine_tuning/jobs": ["post", "get"],
    "/fine_tuning/jobs/{fine_tuning_job_id}": ["get"],
    "/fine_tuning/jobs/{fine_tuning_job_id}/cancel": ["post"],
    "/fine_tuning/jobs/{fine_tuning_job_id}/events": ["get"],
    "/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints": ["get"],
}


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def _repair(node: Any, where: str, repairs: list[str]) -> None:
    """Rewrite OpenAPI 3.0 forms that a 3.1 description must not hold (the validator refuses
    the description otherwise): a boolean ``exclusiveMinimum``/``exclusiveMaximum`` beside
    ``minimum``/``maximum`` becomes the 3.1 number. A ``discriminator`` without a ``mapping``
    goes: validators then look for a schema named after the value ("user"), while the
    ``oneOf`` beside it already decides."""
    if isinstance(node, dict):
        if isinstance(node.get("discriminator"), dict) and "mapping" not in node["discriminator"]:
            del node["discriminator"]
            repairs.append(f"{where}: discriminator without mapping")
        for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if isinstance(node.get(bound), bool):
                flag = node.pop(bound)
                if flag and limit in node:
                    node[bound] = node.pop(limit)
                repairs.append(f"{where}: boolean {bound} as in OpenAPI 3.0")
        for key, value in node.items():
            _repair(value, f"{where}/{key}", repairs)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _repair(value, f"{where}/{i}", repairs)


def cut(document: dict[str, Any], source: dict[str, str]) -> dict[str, Any]:
    paths = {
        path: {method: document["paths"][path][method] for method in methods}
        for path, methods in OPERATIONS.items()
    }
    for operation in (op for item in paths.values() for op in item.values()):
        for key in [k for k in operation if k.startswith("x-oaiMeta")]:
            del operation[key]  # examples in many languages, hundreds of lines each
    kept: dict[str, dict[str, Any]] = {}
    todo = _refs(paths)
    while todo:
        ref = todo.pop()
        _, _, kind, name = ref.split("/", 3)
        if name in kept.setdefault(kind, {}):
            continue
        kept[kind][name] = document["components"][kind][name]
        todo |= _refs(kept[kind][name]) - {f"#/components/{k}/{n}" for k in kept for n in kept[k]}
    repairs: list[str] = []
    # File content is the file's bytes (JSONL, CSV), which the service sends as
    # application/octet-stream; the description names application/json only.
    content = paths["/files/{file_id}/content"]["get"]["responses"]["200"]["content"]
    content["application/octet-stream"] = {"schema": {"type": "string"}}
    repairs.append("#/paths/~1files~1{file_id}~1content/get: file bytes as application/octet-stream")
    _repair(paths, "#/paths", repairs)
    _repair(kept, "#/components", repairs)
    return {
        "openapi": document["openapi"],
        "info": {**document["info"], "x-labelwise-source": source, "x-labelwise-repairs": repairs},
        "servers": [{"url": "/v1"}],
        "paths": paths,
        "components": {kind: dict(sorted(items.items())) for kind, items in sorted(kept.items())},
    }


def main() -> None:
    provider, path, commit = sys.argv[1:4]
    document = json.loads(Path(path).read_text())
    source = {
        "repository": "https://github.com/openai/openai-openapi",
        "path": "openapi.json",
        "commit": commit,
    }
    out = HERE / f"{provider}.json"
    out.write_text(json.dumps(cut(document, source), indent=1, sort_keys=False) + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
