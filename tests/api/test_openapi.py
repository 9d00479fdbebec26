"""The OpenAPI document describes bodies, bearer auth and problem+json errors."""

from __future__ import annotations

import httpx

from tests.conftest import World


def test_openapi_describes_the_wire_format(world: World) -> None:
    document = httpx.get(world.server.url + "/openapi.json").json()
    propose = document["paths"]["/v1/proposals"]["post"]
    body = propose["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ProposalBody"}
    schema = document["components"]["schemas"]["ProposalBody"]
    assert {"kind", "targets", "environment", "intent"} <= set(schema["required"])
    assert propose["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "application/problem+json" in propose["responses"]["422"]["content"]
    assert "security" not in document["paths"]["/healthz"]["get"]
    for path, operations in document["paths"].items():
        for operation in operations.values():
            if "requestBody" in operation:
                ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                assert ref.rsplit("/", 1)[1] in document["components"]["schemas"], path


def test_405_keeps_its_allow_header(world: World) -> None:
    response = httpx.delete(world.server.url + "/healthz")
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "GET" in response.headers["allow"]
