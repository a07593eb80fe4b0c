"""docs/openapi.yaml against the server: the document is checked as OpenAPI 3.0
(structure, resolvable $refs, valid JSON Schemas) and every response the API
tests receive through conftest's Server.request is checked against the schema of
its route, method and status.

Rules (tests/api/conftest.py applies them per test):
  - documented path + method: the status must be documented (else a violation),
    the Content-Type must be one the status documents, and a JSON body must
    validate against its schema, which lists every field (additionalProperties:
    false), so an undocumented field is a violation too;
  - path or method absent from the document: not a violation but a "hit" listed
    in the report printed at the end of the run (new endpoints land before their
    documentation; tighten by making hits violations).
With BIOSERVER_OPENAPI_RECORD=FILE every response is also appended to FILE
(JSON lines) to help write the documentation of a new route.
"""
import json
import os
import re
import threading

import jsonschema
import yaml

DOC_PATH = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "openapi.yaml"))
API_PREFIX = "/bioserver-app"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# The structure of an OpenAPI 3.0 document, as far as this project uses it; no
# Debian package validates OpenAPI, so the rules of the 3.0.3 specification that
# matter here are written down (https://spec.openapis.org/oas/v3.0.3).
_REF = {"type": "object", "required": ["$ref"], "properties": {"$ref": {"type": "string", "pattern": "^#/"}}}
_MEDIA = {"type": "object", "properties": {"schema": {"type": "object"}, "example": {}, "examples": {"type": "object"}},
          "additionalProperties": False}
_CONTENT = {"type": "object", "patternProperties": {r"^[a-z*]+/[-+.a-z0-9*]+$": _MEDIA}, "additionalProperties": False}
_RESPONSE = {"oneOf": [_REF, {"type": "object", "required": ["description"],
                              "properties": {"description": {"type": "string"}, "content": _CONTENT,
                                             "headers": {"type": "object"}}, "additionalProperties": False}]}
_PARAMETER = {"oneOf": [_REF, {"type": "object", "required": ["name", "in"],
                               "properties": {"name": {"type": "string"},
                                              "in": {"enum": ["path", "query", "header", "cookie"]},
                                              "required": {"type": "boolean"}, "description": {"type": "string"},
                                              "schema": {"type": "object"}, "deprecated": {"type": "boolean"}},
                               "additionalProperties": False}]}
_OPERATION = {
    "type": "object", "required": ["responses", "operationId"],
    "properties": {
        "operationId": {"type": "string"}, "summary": {"type": "string"}, "description": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}}, "parameters": {"type": "array", "items": _PARAMETER},
        "requestBody": {"type": "object", "properties": {"content": _CONTENT, "required": {"type": "boolean"},
                                                         "description": {"type": "string"}},
                        "additionalProperties": False},
        "responses": {"type": "object", "minProperties": 1,
                      "patternProperties": {r"^([1-5][0-9X]{2}|default)$": _RESPONSE}, "additionalProperties": False},
        "security": {"type": "array"}, "deprecated": {"type": "boolean"},
    },
    "additionalProperties": False,
}
OPENAPI_30 = {
    "type": "object",
    "required": ["openapi", "info", "paths"],
    "properties": {
        "openapi": {"type": "string", "pattern": r"^3\.0\.\d+$"},
        "info": {"type": "object", "required": ["title", "version"]},
        "servers": {"type": "array", "items": {"type": "object", "required": ["url"]}},
        "security": {"type": "array"},
        "tags": {"type": "array"},
        "components": {"type": "object", "properties": {
            "schemas": {"type": "object", "additionalProperties": {"type": "object"}},
            "responses": {"type": "object", "additionalProperties": _RESPONSE},
            "parameters": {"type": "object", "additionalProperties": _PARAMETER},
            "securitySchemes": {"type": "object"}}, "additionalProperties": False},
        "paths": {"type": "object", "additionalProperties": False, "patternProperties": {
            "^/": {"type": "object", "properties": dict({m: _OPERATION for m in METHODS}, parameters={
                "type": "array", "items": _PARAMETER}, summary={"type": "string"}, description={"type": "string"},
                servers={"type": "array", "items": {"type": "object", "required": ["url"]}}),
                   "additionalProperties": False}}},
    },
    "additionalProperties": False,
}


def _resolve(doc, node):
    while isinstance(node, dict) and "$ref" in node:
        target = doc
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def _to_json_schema(doc, schema):
    """An OpenAPI 3.0 schema object as a Draft 4 JSON Schema: $refs inlined,
    `nullable` turned into a null type, OpenAPI-only keywords dropped."""
    if isinstance(schema, list):
        return [_to_json_schema(doc, s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    schema = _resolve(doc, schema)
    out = {}
    for k, v in schema.items():
        if k in ("nullable", "example", "deprecated", "readOnly", "writeOnly", "xml", "externalDocs", "discriminator"):
            continue
        if k in ("properties", "patternProperties"):
            out[k] = {name: _to_json_schema(doc, s) for name, s in v.items()}
        else:
            out[k] = _to_json_schema(doc, v)
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = list(out["enum"]) + [None]
    return out


def _walk_refs(doc, node, where, problems):
    if isinstance(node, dict):
        if "$ref" in node:
            try:
                _resolve(doc, node)
            except (KeyError, TypeError):
                problems.append(f"{where}: unresolvable $ref {node['$ref']}")
        for k, v in node.items():
            _walk_refs(doc, v, f"{where}/{k}", problems)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _walk_refs(doc, v, f"{where}/{i}", problems)


UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _template_regex(path):
    return re.compile("^" + re.sub(r"\\\{[^/]+\\\}", "[^/]+", re.escape(path)) + "$")


class OpenApi:
    def __init__(self, path=DOC_PATH):
        with open(path) as f:
            self.doc = yaml.safe_load(f)
        self.routes = [(_template_regex(p), p) for p in self.doc.get("paths", {})]
        # Literal segments first, so /v2/match/images is not taken for a template.
        self.routes.sort(key=lambda r: r[1].count("{"))
        self.lock = threading.Lock()
        self.hits = {}  # (METHOD, path template or raw path) -> count, undocumented only
        self.violations = []
        record = os.environ.get("BIOSERVER_OPENAPI_RECORD")
        self.record_file = open(record, "a") if record else None

    # -- the document ----------------------------------------------------------------------
    def problems(self):
        """Everything that makes the document an invalid OpenAPI 3.0 description."""
        problems = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                    for e in jsonschema.Draft4Validator(OPENAPI_30).iter_errors(self.doc)]
        _walk_refs(self.doc, self.doc, "#", problems)
        if problems:
            return problems
        for name, schema in self.doc.get("components", {}).get("schemas", {}).items():
            try:
                jsonschema.Draft4Validator.check_schema(_to_json_schema(self.doc, schema))
            except jsonschema.SchemaError as e:
                problems.append(f"components/schemas/{name}: {e.message}")
        seen = {}
        for path, item in self.doc["paths"].items():
            params = set(re.findall(r"\{([^}]+)\}", path))
            declared = {p["name"] for p in map(lambda p: _resolve(self.doc, p), item.get("parameters", []))
                        if p["in"] == "path"}
            for method in METHODS:
                op = item.get(method)
                if not op:
                    continue
                oid = op["operationId"]
                if oid in seen:
                    problems.append(f"operationId {oid} used by {seen[oid]} and {method} {path}")
                seen[oid] = f"{method} {path}"
                mine = declared | {p["name"] for p in map(lambda p: _resolve(self.doc, p), op.get("parameters", []))
                                   if p["in"] == "path"}
                if mine != params:
                    problems.append(f"{method} {path}: path parameters {sorted(mine)} != {sorted(params)}")
        return problems

    # -- responses -------------------------------------------------------------------------
    def route(self, raw_path):
        path = raw_path.split("?", 1)[0]
        if path.startswith(API_PREFIX + "/"):
            path = path[len(API_PREFIX):]
        for regex, template in self.routes:
            if regex.match(path):
                return template, path
        return None, path

    def check(self, method, raw_path, status, content_type, body):
        """Returns the violations of one response (and remembers them)."""
        template, path = self.route(raw_path)
        if self.record_file:
            with self.lock:
                self.record_file.write(json.dumps({"method": method, "path": path, "template": template,
                                                   "status": status, "type": content_type,
                                                   "body": body if isinstance(body, (dict, list)) else None}) + "\n")
                self.record_file.flush()
        op = self.doc["paths"][template].get(method.lower()) if template else None
        if op is None:
            with self.lock:
                key = (method.upper(), template or UUID_RE.sub("{id}", path))
                self.hits[key] = self.hits.get(key, 0) + 1
            return []
        where = f"{method.upper()} {template} -> {status}"
        responses = op["responses"]
        response = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
        if response is None:
            return self._violate([f"{where}: status not documented (documented: {', '.join(sorted(responses))})"])
        content = _resolve(self.doc, response).get("content")
        if not content:
            return self._violate([f"{where}: documented without a body, got {content_type}"]) if body not in (
                None, b"", "") else []
        mime = (content_type or "").split(";")[0].strip().lower()
        if mime not in content:
            return self._violate([f"{where}: Content-Type {content_type!r} not documented ({', '.join(content)})"])
        schema = content[mime].get("schema")
        if schema is None or not mime.endswith("json") or body is None:
            return []
        validator = jsonschema.Draft4Validator(_to_json_schema(self.doc, schema))
        errors = [f"{where}: /{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in validator.iter_errors(body)]
        return self._violate(errors[:5])

    def _violate(self, problems):
        with self.lock:
            self.violations.extend(problems)
        return problems

    def take_violations(self):
        with self.lock:
            out, self.violations = self.violations, []
        return out

    def report(self):
        """Lines for the end of the run: undocumented routes the tests called."""
        if not self.hits:
            return ["openapi: every route the tests called is documented in docs/openapi.yaml"]
        lines = [f"openapi: {len(self.hits)} undocumented route(s) called by the tests (not in docs/openapi.yaml):"]
        lines += [f"  {n:5d}  {m} {p}" for (m, p), n in sorted(self.hits.items())]
        return lines


def response_body(resp):
    """The parsed JSON body of a requests response, or None when it is not JSON."""
    ctype = resp.headers.get("Content-Type", "")
    if "json" not in ctype:
        return None if not resp.content else b"<binary>"
    try:
        return resp.json()
    except ValueError:
        return "<invalid JSON>"
