"""The OpenAPI document, adjusted so it says exactly what the API accepts and answers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter

from controlbot.api.inputs import git_url_pattern
from controlbot.api.schemas import LogLine, StreamEvent

# Schemas used only by non-JSON responses (NDJSON), which FastAPI does not collect by itself.
_EXTRA_SCHEMAS: tuple[type[Any], ...] = (StreamEvent, LogLine)

# A deploy takes a file, or a git URL (with its optional branch and entry point), never both.
_CREATE_SOURCE_RULE: dict[str, Any] = {
    "oneOf": [
        {
            "required": ["file"],
            "not": {"anyOf": [{"required": [k]} for k in ("git_url", "branch", "entrypoint")]},
        },
        {"required": ["git_url"], "not": {"required": ["file"]}},
    ]
}
# An update takes a file, or a git pull with an optional branch/commit, never both.
_UPDATE_SOURCE_RULE: dict[str, Any] = {
    "not": {"required": ["file"], "anyOf": [{"required": ["branch"]}, {"required": ["commit"]}]}
}
# A file part carries its name: .py for a single-file bot, .zip for a package.
_FILE_ENCODING: dict[str, Any] = {
    "file": {
        "headers": {
            "Content-Disposition": {
                "description": "The file name must end in .py or .zip.",
                "schema": {"type": "string", "example": 'form-data; name="file"; filename="bot.py"'},
            }
        },
    }
}
_BODY_RULES: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/bots", "post"): _CREATE_SOURCE_RULE,
    ("/api/bots/{name}", "put"): _UPDATE_SOURCE_RULE,
}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    for model in _EXTRA_SCHEMAS:
        adapter = TypeAdapter(model)
        extra = adapter.json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
        for name, sub in extra.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components.setdefault(model.__name__, extra)
    schemes: list[str] = app.state.ctx.settings.git_allowed_schemes
    for (path, method), rule in _BODY_RULES.items():
        body = _multipart_schema(doc, components, path, method)
        _drop_nulls(body)
        body.update(rule)
        body["properties"]["file"]["minLength"] = 1  # an empty file is refused
        if "git_url" in body["properties"]:
            body["properties"]["git_url"]["pattern"] = git_url_pattern(schemes)
        content = doc["paths"][path][method]["requestBody"]["content"]["multipart/form-data"]
        content["encoding"] = _FILE_ENCODING
    return doc


def _multipart_schema(
    doc: dict[str, Any], components: dict[str, Any], path: str, method: str
) -> dict[str, Any]:
    ref: str = doc["paths"][path][method]["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    schema: dict[str, Any] = components[ref.rsplit("/", 1)[-1]]
    return schema


def _drop_nulls(body: dict[str, Any]) -> None:
    """A form field is either sent or not: it can never be null, so say so."""
    for name, prop in list(body.get("properties", {}).items()):
        options = prop.get("anyOf")
        if not options:
            continue
        kept = [o for o in options if o.get("type") != "null"]
        if len(kept) == 1:
            merged = {k: v for k, v in prop.items() if k != "anyOf"}
            merged.update(kept[0])
            body["properties"][name] = merged
