"""The HTTP API's contract, bot/openapi.json, as the e2e tests check answers against it."""

import json
from typing import Any

from jsonschema import Draft202012Validator

from bot.observability import OPENAPI

SPEC: dict[str, Any] = json.loads(OPENAPI.read_text())


def conforms(path: str, method: str, status: int, content_type: str, body: object) -> None:
    """Fail unless ``body`` is what the contract says ``method path`` answers with ``status``."""
    responses = SPEC["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} answered {status}, which the contract lacks"
    media = content_type.split(";")[0]
    content = responses[str(status)]["content"]
    assert media in content, f"{media} is not a content type of {status}"
    pointer = "/".join(p.replace("~", "~0").replace("/", "~1") for p in ("paths", path, method, "responses", str(status), "content", media, "schema"))
    Draft202012Validator({**SPEC, "$ref": f"#/{pointer}"}).validate(body)
