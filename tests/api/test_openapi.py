"""docs/openapi.yaml is a valid OpenAPI 3.0 description, and the response checker
that conftest applies to every test (tests/api/openapi_check.py) catches what it
must: an undocumented status, field or Content-Type on a documented route, while
a route missing from the document is only reported."""
import copy

import yaml

from openapi_check import DOC_PATH, OpenApi


def test_document_is_valid_openapi_3():
    api = OpenApi()
    assert api.problems() == []
    assert api.doc["openapi"].startswith("3.0.")


def test_document_covers_the_route_table():
    """Every route of src/api/routes.c (except the static capture page and the
    un-prefixed /metrics alias) has its method documented."""
    import re
    from conftest import REPO_ROOT
    table = open(f"{REPO_ROOT}/src/api/routes.c").read()
    api = OpenApi()
    missing = []
    for method, path in re.findall(r'\{"([A-Z]+)", "(/[^"]*)"', table):
        if path.startswith("/capture") or path == "/metrics":
            continue
        template, _ = api.route(path.replace("{}", "x"))
        if not template or method.lower() not in api.doc["paths"][template]:
            missing.append(f"{method} {path}")
    assert missing == []


def test_checker_flags_undocumented_status_field_and_type():
    api = OpenApi()
    problems = api.check("GET", "/bioserver-app/v2/capabilities", 418, "application/json", {})
    assert problems and "status not documented" in problems[0]
    ok = {"version": "1.0.0", "currentMode": ["F5_1_VID60"], "supportedModes": ["F5_1_VID60"]}
    assert api.check("GET", "/bioserver-app/v2/capabilities", 200, "application/json", ok) == []
    extra = dict(ok, secretField=1)
    problems = api.check("GET", "/bioserver-app/v2/capabilities", 200, "application/json", extra)
    assert problems and "secretField" in problems[0]
    problems = api.check("GET", "/bioserver-app/v2/capabilities", 200, "text/html", ok)
    assert problems and "Content-Type" in problems[0]
    error = {"id": "8a1c5cf4-2a2f-4a35-9b5b-2b4a0e0e6d11", "message": "x"}
    assert api.check("GET", "/bioserver-app/v2/bio-sessions/abc", 404, "application/json", error) == []
    problems = api.check("GET", "/bioserver-app/v2/bio-sessions/abc", 404, "application/json", {"message": "x"})
    assert problems and "'id' is a required property" in problems[0]
    assert api.take_violations()  # remembered for the per-test check
    api.take_violations()


def test_checker_reports_undocumented_routes_without_failing():
    api = OpenApi()
    assert api.check("GET", "/bioserver-app/v2/not-yet-documented/8a1c5cf4-2a2f-4a35-9b5b-2b4a0e0e6d11", 200,
                     "application/json", {"a": 1}) == []
    assert api.check("PUT", "/bioserver-app/v2/capabilities", 405, "application/json", {}) == []
    assert api.take_violations() == []
    report = "\n".join(api.report())
    assert "GET /v2/not-yet-documented/{id}" in report and "PUT /v2/capabilities" in report


def test_structural_errors_are_found(tmp_path):
    doc = yaml.safe_load(open(DOC_PATH))
    bad = copy.deepcopy(doc)
    bad["openapi"] = "2.0"
    op = next(iter(bad["paths"].values()))
    method = next(m for m in op if m in ("get", "post", "delete"))
    op[method]["responses"]["200"] = {"content": {}}  # no description
    op[method]["responses"]["299x"] = {"description": "x"}
    bad["components"]["schemas"]["Broken"] = {"type": "nonsense"}
    bad["paths"]["/v2/x/{id}"] = {"get": {"operationId": "x", "responses": {
        "200": {"$ref": "#/components/responses/Missing"}}}}
    path = tmp_path / "openapi.yaml"
    path.write_text(yaml.safe_dump(bad))
    problems = "\n".join(OpenApi(str(path)).problems())
    for part in ("openapi", "responses/200", "299x", "unresolvable $ref #/components/responses/Missing"):
        assert part in problems, problems
    del bad["paths"]["/v2/x/{id}"]
    path.write_text(yaml.safe_dump(bad))
    bad["openapi"] = "3.0.3"
    op[method]["responses"] = {"200": {"description": "ok"}}
    bad["paths"]["/v2/y/{id}"] = {"get": {"operationId": "y", "responses": {"200": {"description": "ok"}}}}
    path.write_text(yaml.safe_dump(bad))
    problems = "\n".join(OpenApi(str(path)).problems())
    assert "components/schemas/Broken" in problems and "path parameters [] != ['id']" in problems, problems
