"""Compose importer: the OpenTelemetry demo (with its .env) and DeathStarBench."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placet.graph.errors import GraphInputError
from placet.graph.importers import compose
from placet.graph.importers.compose_env import TemplateError, interpolate, parse_dotenv
from placet.graph.importers.compose_fields import EXPOSED
from placet.graph.importers.hints import counts, host_refs, image_repository, kind_from_words
from placet.graph.model import (
    INTERNET_FACING,
    EdgeFact,
    EdgeKind,
    ImportResult,
    NodeFact,
    NodeKind,
)

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
OTEL = DATA / "otel-demo"
COMPOSE, FULL = OTEL / "compose.yaml", OTEL / "compose.full.yaml"
DSB = DATA / "deathstarbench"
HOTEL = DSB / "hotelReservation-docker-compose.yml"
MEDIA = DSB / "mediaMicroservices-docker-compose.yml"
SOCIAL = DSB / "socialNetwork-docker-compose.yml"
DANGLING = {"grafana": 334, "jaeger": 336, "opamp-server": 337, "firepit": 350, "chatbot": 358}


def _nodes(result: ImportResult) -> dict[str, NodeFact]:
    return {n.id: n for n in result.nodes}


def _edges(result: ImportResult, kind: EdgeKind) -> dict[tuple[str, str], EdgeFact]:
    return {(e.source, e.target): e for e in result.edges if e.kind is kind}


@pytest.fixture(scope="module")
def shop() -> ImportResult:
    return compose.parse([COMPOSE], "otel-compose")


@pytest.fixture(scope="module")
def shop_full() -> ImportResult:
    return compose.parse([OTEL / ".env", COMPOSE, FULL], "otel-compose-full")


def test_services_become_nodes(shop: ImportResult) -> None:
    nodes = _nodes(shop)
    services = {i for i, n in nodes.items() if n.kind is not NodeKind.EXTERNAL}
    assert len(services) == 20
    assert len(nodes) == 20 + len(DANGLING)
    assert {"frontend", "checkout", "cart", "otel-collector", "flagd-ui"} <= services
    assert nodes["astronomy-db"].kind is NodeKind.DATASTORE  # postgres image from .env
    assert nodes["valkey-cart"].kind is NodeKind.DATASTORE  # valkey image from .env
    assert nodes["checkout"].kind is NodeKind.SERVICE
    assert nodes["checkout"].provenance.line == 114
    assert nodes["checkout"].provenance.file == str(COMPOSE)
    assert nodes["ad"].attributes["image"] == "ghcr.io/open-telemetry/demo:latest-ad"
    assert nodes["astronomy-db"].attributes["image"] == "postgres:18.4"
    assert nodes["cart"].source_paths == ("src/cart/src",)  # the Dockerfile's directory
    assert nodes["flagd"].source_paths == ()  # image only, nothing built


def test_long_form_depends_on_keeps_conditions(shop: ImportResult) -> None:
    deps = _edges(shop, EdgeKind.DEPENDS_ON)
    currency = deps[("checkout", "currency")]
    assert currency.attributes == {"via": "depends_on", "condition": "service_healthy"}
    assert currency.provenance.line == 154
    assert deps[("checkout", "cart")].attributes["condition"] == "service_started"
    assert deps[("product-catalog", "astronomy-db")].attributes["condition"] == "service_healthy"
    assert {t for s, t in deps if s == "frontend-proxy"} == {
        "frontend",
        "flagd-ui",
        "telemetry-docs",
    }
    assert len(deps) == 46


def test_addresses_are_interpolated_from_dotenv(shop: ImportResult) -> None:
    calls = _edges(shop, EdgeKind.CALLS)
    cart = calls[("checkout", "cart")]  # CART_ADDR=cart:${CART_PORT} in .env, CART_PORT=7070
    assert cart.attributes == {
        "via": "environment",
        "refs": ["environment CART_ADDR"],
        "ports": [7070],
    }
    assert cart.provenance.line == 133
    email = calls[("checkout", "email")]  # EMAIL_ADDR=http://email:${EMAIL_PORT}
    assert email.attributes["ports"] == [6060]
    # a URL with credentials, interpolated in the compose file itself from POSTGRES_HOST
    db = calls[("product-catalog", "astronomy-db")]
    assert db.attributes["refs"] == ["environment DB_CONNECTION_STRING"]
    assert db.provenance.line == 529
    # .env's own interpolation: OTEL_EXPORTER_OTLP_ENDPOINT=http://${OTEL_COLLECTOR_HOST}:...
    assert calls[("cart", "otel-collector")].attributes["ports"] == [4317]
    assert calls[("ad", "otel-collector")].attributes["ports"] == [4318]
    assert calls[("load-generator", "frontend-proxy")].attributes["refs"] == [
        "environment K6_TARGET_URL"
    ]
    assert calls[("frontend-proxy", "frontend")].attributes["refs"] == ["environment FRONTEND_HOST"]
    assert ("ad", "ad") not in calls  # OTEL_SERVICE_NAME=ad names itself


def test_exposure(shop: ImportResult) -> None:
    nodes = _nodes(shop)
    facing = {i for i, n in nodes.items() if INTERNET_FACING in n.tags}
    assert facing == {"frontend-proxy"}
    assert nodes["frontend-proxy"].attributes["published"] == [
        "0.0.0.0:8080->8080",
        "0.0.0.0:10000->10000",
    ]
    assert nodes["cart"].tags == (EXPOSED,)  # "${CART_PORT}": an ephemeral host port
    assert nodes["load-generator"].tags == ()


def test_dangling_hosts_are_external_with_warnings(shop: ImportResult) -> None:
    nodes = _nodes(shop)
    externals = {i: n.provenance.line for i, n in nodes.items() if n.kind is NodeKind.EXTERNAL}
    assert externals == DANGLING
    assert [(w.file, w.line) for w in shop.warnings] == [
        (str(COMPOSE), n) for n in DANGLING.values()
    ]
    assert "GRAFANA_HOST names 'grafana'" in shop.warnings[0].message
    assert ("frontend-proxy", "grafana") in _edges(shop, EdgeKind.CALLS)


def test_override_file_resolves_against_its_base(shop_full: ImportResult) -> None:
    nodes = _nodes(shop_full)
    assert nodes["kafka"].kind is NodeKind.QUEUE  # by name: the image is demo:latest-kafka
    assert nodes["checkout"].provenance.file == str(COMPOSE)  # the base definition leads
    deps = _edges(shop_full, EdgeKind.DEPENDS_ON)
    assert deps[("accounting", "kafka")].attributes["condition"] == "service_healthy"
    assert deps[("checkout", "kafka")].provenance.file == str(FULL)
    assert ("accounting", "otel-collector") in deps  # defined in compose.yaml only
    calls = _edges(shop_full, EdgeKind.CALLS)
    assert calls[("accounting", "astronomy-db")].attributes["refs"] == [
        "environment DB_CONNECTION_STRING"
    ]  # Host=astronomy-db;Username=... a connection string's host
    assert calls[("checkout", "kafka")].attributes["ports"] == [9092]
    assert len(shop_full.warnings) == len(DANGLING)  # the .env is used, not warned about
    assert str(OTEL / ".env") in shop_full.files


def test_a_lone_dotenv_is_reported(tmp_path: Path) -> None:
    lone = tmp_path / ".env"
    lone.write_text("A=1\n")
    result = compose.parse([lone], "lone")
    assert [(w.file, w.line) for w in result.warnings] == [(str(lone), None)]
    assert "no compose file beside this .env" in result.warnings[0].message


def test_override_file_alone_has_dangling_references() -> None:
    result = compose.parse([FULL], "full-only")
    nodes = _nodes(result)
    assert nodes["otel-collector"].kind is NodeKind.SERVICE  # patched here, so defined here
    assert nodes["astronomy-db"].kind is NodeKind.EXTERNAL
    assert any(
        "environment DB_CONNECTION_STRING names 'astronomy-db'" in w.message
        for w in result.warnings
    )


def test_deathstarbench_counts_and_edges() -> None:
    hotel, media, social = (compose.parse([f], "dsb") for f in (HOTEL, MEDIA, SOCIAL))
    assert [len(r.nodes) for r in (hotel, media, social)] == [24, 33, 27]
    assert [len(_edges(r, EdgeKind.DEPENDS_ON)) for r in (hotel, media, social)] == [22, 0, 19]
    assert [len(_edges(r, EdgeKind.CALLS)) for r in (hotel, media, social)] == [0, 0, 0]
    assert hotel.warnings == media.warnings == social.warnings == ()
    deps = _edges(hotel, EdgeKind.DEPENDS_ON)
    assert {t for s, t in deps if s == "reservation"} == {
        "mongodb-reservation",
        "memcached-reserve",
        "consul",
    }
    assert deps[("reservation", "mongodb-reservation")].provenance.line == 212
    assert deps[("reservation", "consul")].attributes["condition"] == "service_started"  # short
    social_deps = _edges(social, EdgeKind.DEPENDS_ON)
    assert social_deps[("user-timeline-service", "user-timeline-mongodb")].attributes == {
        "via": "depends_on",
        "condition": "service_started",
    }
    kinds = [sum(n.kind is NodeKind.DATASTORE for n in r.nodes) for r in (hotel, media, social)]
    assert kinds == [12, 18, 13]  # mongo, memcached and redis images


def test_deathstarbench_exposure() -> None:
    media = _nodes(compose.parse([MEDIA], "dsb"))
    # a database published on a fixed host port on every interface
    assert INTERNET_FACING in media["movie-review-mongodb"].tags
    assert media["movie-review-mongodb"].attributes["published"] == ["0.0.0.0:27022->27017"]
    social = _nodes(compose.parse([SOCIAL], "dsb"))
    facing = {i for i, n in social.items() if INTERNET_FACING in n.tags}
    assert facing == {"nginx-thrift", "media-frontend", "post-storage-service", "jaeger-agent"}
    assert social["media-frontend"].attributes["published"] == ["0.0.0.0:8081->8080"]
    hotel = _nodes(compose.parse([HOTEL], "dsb"))
    assert "0.0.0.0:(ephemeral)->14269" in hotel["jaeger"].attributes["published"]
    assert "0.0.0.0:8600->53" in hotel["consul"].attributes["published"]


SYNTHETIC = """\
include:
  - other.yaml
services:
  web:
    image: "nginx:${NGINX_TAG:-1.27}"
    ports:
      - 2222:22
      - "127.0.0.1:8080:80"
      - "[::1]:9000:9000"
      - target: 443
        published: "8443"
        host_ip: 0.0.0.0
    links:
      - api:backend
    depends_on: [api]
    environment:
      UPSTREAM: http://backend:8080/v1
      PRICE: "$$5"
      MODE: ${MODE-fast}
      WHO: api
      RENDER_URL: https://render.example.com/x
      MISSING: ${NOT_SET}
  api:
    build: {context: ./services/api}
    container_name: api-main
    env_file: api.env
    networks:
      default:
        aliases: [api-internal]
  worker:
    extends: {service: api}
    image: $WORKER_IMAGE
    command: ["worker", "--queue", "amqp://guest@queue-broker:5672", "api-main"]
    ports:
      - "127.0.0.1:5555:5555"
"""


def _synthetic_line(text: str) -> int:
    return [line.strip() for line in SYNTHETIC.splitlines()].index(text) + 1


@pytest.fixture()
def synthetic(tmp_path: Path) -> ImportResult:
    (tmp_path / ".env").write_text("# settings\nexport WORKER_IMAGE='acme/worker:2'\n")
    (tmp_path / "api.env").write_text('DATABASE_URL="postgres://db.internal:5432/app"\n')
    path = tmp_path / "docker-compose.yml"
    path.write_text(SYNTHETIC, encoding="utf-8")
    return compose.parse([path], "synthetic")


def test_synthetic_forms(synthetic: ImportResult) -> None:
    result = synthetic
    nodes = _nodes(result)
    assert nodes["web"].attributes["image"] == "nginx:1.27"
    assert nodes["worker"].attributes["image"] == "acme/worker:2"
    assert nodes["api"].source_paths == ("services/api",)
    deps = _edges(result, EdgeKind.DEPENDS_ON)
    assert deps[("web", "api")].attributes == {"via": "depends_on", "condition": "service_started"}
    calls = _edges(result, EdgeKind.CALLS)
    # one edge for UPSTREAM (through the link alias "backend") and WHO (the bare service name)
    assert calls[("web", "api")].attributes["refs"] == ["environment UPSTREAM", "environment WHO"]
    assert calls[("worker", "api")].attributes == {
        "via": "command",
        "refs": ["command"],
        "ports": [],
    }
    assert nodes["queue-broker"].kind is NodeKind.EXTERNAL
    assert nodes["render.example.com"].kind is NodeKind.EXTERNAL
    assert nodes["db.internal"].kind is NodeKind.EXTERNAL  # from api.env
    assert ("api", "db.internal") in calls


def test_synthetic_ports(synthetic: ImportResult) -> None:
    result = synthetic
    nodes = _nodes(result)
    assert nodes["web"].tags == (INTERNET_FACING,)
    assert nodes["web"].attributes["published"] == [
        "0.0.0.0:2222->22",  # YAML 1.2: 2222:22 is a string, not a base-60 number
        "127.0.0.1:8080->80 (loopback)",
        "::1:9000->9000 (loopback)",
        "0.0.0.0:8443->443",
    ]
    assert nodes["worker"].tags == ()  # loopback only


def test_synthetic_warnings(synthetic: ImportResult) -> None:
    result = synthetic
    messages = [(w.line, w.message) for w in result.warnings]
    assert (1, "include is not followed; import those files too") in messages
    extends, missing = (
        _synthetic_line("extends: {service: api}"),
        _synthetic_line("MISSING: ${NOT_SET}"),
    )
    assert (extends, "service worker: extends is not followed") in messages
    assert any(line == missing and "variable NOT_SET is not set" in m for line, m in messages)
    render = _synthetic_line("RENDER_URL: https://render.example.com/x")
    assert (
        render,
        "service web environment RENDER_URL names 'https://render.example.com/x', which no "
        "compose file here defines; kept as external node 'render.example.com'",
    ) in messages
    assert not any("MODE" in m or "PRICE" in m for _, m in messages)


def test_invalid_interpolation_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  a:\n    image: x\n    command: echo $(date)\n")
    with pytest.raises(GraphInputError) as caught:
        compose.parse([bad], "bad")
    assert (caught.value.file, caught.value.line) == (str(bad), 4)
    assert "use $$ for a $" in str(caught.value)


def test_malformed_yaml_and_shapes(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  a:\n    image: [x\n  b: {}\n")
    with pytest.raises(GraphInputError) as caught:
        compose.parse([broken], "bad")
    assert caught.value.file == str(broken) and caught.value.line == 4
    listed = tmp_path / "list.yaml"
    listed.write_text("services:\n  - a\n  - b\n")
    with pytest.raises(GraphInputError) as caught:
        compose.parse([listed], "bad")
    assert (caught.value.line, "services must be a mapping" in str(caught.value)) == (1, True)
    env = tmp_path / "sub"
    env.mkdir()
    (env / ".env").write_text("A=1\nB=${A\n")
    (env / "compose.yaml").write_text("services:\n  a:\n    image: x\n")
    with pytest.raises(GraphInputError) as caught:
        compose.parse([env / "compose.yaml"], "bad")
    assert (caught.value.file, caught.value.line) == (str(env / ".env"), 2)


def test_detect() -> None:
    for path in (COMPOSE, FULL, HOTEL, MEDIA, SOCIAL, OTEL / ".env"):
        assert compose.detect(path, path.read_text())
    workflow = DATA / "online-boutique" / "github-workflows" / "ci-main.yaml"
    manifests = DATA / "online-boutique" / "kubernetes-manifests.yaml"
    for path in (workflow, manifests):
        assert not compose.detect(path, path.read_text())


def test_interpolation_forms() -> None:
    env = {"A": "x", "E": ""}
    missing: list[str] = []

    def report(name: str, what: str) -> None:
        missing.append(name)

    cases = {
        "${A}": "x", "$A/b": "x/b", "$$A": "$A", "${B:-d}": "d", "${E:-d}": "d", "${E-d}": "",
        "${B-${A}}": "x", "${A:+y}": "y", "${B:+y}": "", "${E+y}": "y", "${B}": "",
    }  # fmt: skip
    for template, expected in cases.items():
        assert interpolate(template, env, report) == expected, template
    assert missing == ["B"]
    assert interpolate("${B:?need it}", env, report) == "" and missing == ["B", "B"]
    for bad in ("$(date)", "${A", "${1}", "cost$", "${A!x}"):
        with pytest.raises(TemplateError):
            interpolate(bad, env, report)


def test_dotenv_syntax(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# comment\n\nexport A=1\nB = two words # comment\nC='${A} literal'\n"
        'D="line\\nnext ${A} \\"q\\" \\$A"\nE=${A}${B}\nnot a pair\nF=\n'
    )
    assert parse_dotenv(path, {}, lambda n, w: None) == {
        "A": "1",
        "B": "two words",
        "C": "${A} literal",
        "D": 'line\nnext 1 "q" $A',
        "E": "1two words",
        "F": "",
    }


def test_host_hints() -> None:
    refs = host_refs("PLAINTEXT://kafka:9092,CONTROLLER://kafka:9093 1@zk:2181")
    assert [(r.host, r.port, r.scheme) for r in refs] == [
        ("kafka", 9092, "plaintext"),
        ("kafka", 9093, "controller"),
        ("zk", 2181, None),
    ]
    assert host_refs("http://*:7070 0.0.0.0 localhost:80 127.0.0.1:9 10.0.0.1:80")[0].host == (
        "10.0.0.1"
    )
    assert host_refs("--require @opentelemetry/auto-instrumentations-node/register") == []
    assert host_refs("3.0.0") == [] and host_refs("file:./etc/flagd.json") == []
    assert host_refs("false") == host_refs("none") == []  # e.g. PROXY_HOST=none
    [bare] = host_refs("cart")
    assert counts(bare, True, "WHATEVER") and not counts(bare, False, "LOG_LEVEL")
    assert counts(bare, False, "CART_HOST") and counts(bare, False, "redis.url")
    [in_prose, _] = host_refs("ping frontend now")[:2]
    assert not counts(in_prose, True, None)  # a known name inside prose is not a reference
    [keyed, *_] = host_refs("Host=db;Username=u")
    assert keyed.key == "Host" and counts(keyed, False, "CONNECTION")
    assert image_repository("ghcr.io/valkey-io/valkey:9.0@sha256:ab") == "valkey"
    assert kind_from_words("bitnami-postgresql") is NodeKind.DATASTORE
    assert kind_from_words("cp-kafka") is NodeKind.QUEUE
    assert kind_from_words("redis-exporter") is None and kind_from_words("frontend") is None


@given(st.text(max_size=40))
def test_escaped_dollars_survive_interpolation(text: str) -> None:
    assert interpolate(text.replace("$", "$$"), {}, lambda n, w: None) == text
