"""The line-keeping YAML loader every YAML importer reads through."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from placet.graph.errors import GraphInputError
from placet.graph.importers import compose, github_actions
from placet.graph.importers.yamllines import (
    MarkedList,
    MarkedMap,
    _load,
    load_documents,
    plain,
    read_text,
)

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
FILE = Path("test.yaml")


def _one(text: str) -> Any:
    [(document, _)] = load_documents(FILE, text)
    return document


def _error(text: str) -> GraphInputError:
    with pytest.raises(GraphInputError) as caught:
        load_documents(FILE, text)
    assert caught.value.file == str(FILE)
    return caught.value


# -- YAML 1.2 scalars --------------------------------------------------------------------


def test_yaml_1_2_integers_no_base_60_no_yaml_1_1_octal_or_underscores() -> None:
    doc = _one(
        "ports: [2222:22, 1:20.5, 80]\n"
        "dec: 0644\noct: 0o17\nhex: 0x1F\nneg: -12\npos: +3\nunderscored: 1_000\n"
        "big: 123456789012345678901234567890\nnot_hex: 0x\n"
    )
    assert doc["ports"] == ["2222:22", "1:20.5", 80]
    assert (doc["dec"], doc["oct"], doc["hex"], doc["neg"], doc["pos"]) == (644, 15, 31, -12, 3)
    assert doc["underscored"] == "1_000"
    assert doc["big"] == 123456789012345678901234567890
    assert doc["not_hex"] == "0x"


def test_only_true_and_false_are_booleans() -> None:
    doc = _one("a: yes\nb: no\nc: on\nd: off\ne: y\nf: N\ng: true\nh: True\ni: FALSE\nj: tRue\n")
    assert doc == {
        "a": "yes",
        "b": "no",
        "c": "on",
        "d": "off",
        "e": "y",
        "f": "N",
        "g": True,
        "h": True,
        "i": False,
        "j": "tRue",
    }


def test_nulls_floats_and_strings_that_yaml_1_1_would_convert() -> None:
    doc = _one(
        "a: ~\nb:\nc: Null\nd: 1e3\ne: .5\nf: 1.\ng: -.inf\nh: .NaN\ni: 2024-01-01\n"
        "j: =\nk: '12'\nl: |\n  x: 1\nm: -.nan\nn: .\n"
    )
    assert (doc["a"], doc["b"], doc["c"]) == (None, None, None)
    assert (doc["d"], doc["e"], doc["f"], doc["g"]) == (1000.0, 0.5, 1.0, -math.inf)
    assert math.isnan(doc["h"])
    assert [doc[k] for k in "ijklmn"] == ["2024-01-01", "=", "12", "x: 1\n", "-.nan", "."]


def test_workflow_on_key_stays_the_string_on(tmp_path: Path) -> None:
    text = "on:\n  push:\n    paths: [src/cart/**]\njobs:\n  j:\n    steps: []\n"
    doc = _one(text)
    assert list(doc) == ["on", "jobs"]
    assert doc["on"] == {"push": {"paths": ["src/cart/**"]}}
    assert True not in doc
    assert _one("true: x\n") == {True: "x"}  # a real boolean key is still a boolean
    workflow = tmp_path / "ci.yaml"
    workflow.write_text(text)
    [node] = github_actions.parse([workflow], "ci").nodes
    assert node.attributes["triggers"] == {"push": {"paths": ["src/cart/**"]}}
    assert node.attributes["trigger_paths"] == ["src/cart/**"]


def test_explicit_core_tags_convert_and_others_are_refused() -> None:
    doc = _one("a: !!str 12\nb: !!int '12'\nc: !!float 1\nd: !!bool 'true'\ne: !!null ''\nf: ! 7\n")
    assert doc == {"a": "12", "b": 12, "c": 1.0, "d": True, "e": None, "f": "7"}
    for text, line, problem in [
        ("a: 1\nb: !!int x\n", 2, "'x' is not a valid !!int"),
        ("a: !!bool yes\n", 1, "'yes' is not a valid !!bool"),
        ("a:\n  b: !!binary aGk=\n", 2, "unsupported tag !!binary"),
        ("a: !Ref x\n", 1, "unsupported tag !Ref"),
        ("a: !!set {x}\n", 1, "unsupported tag !!set"),
        ("a: !!str [x]\n", 1, "unsupported tag !!str"),
    ]:
        error = _error(text)
        assert (error.line, problem in str(error)) == (line, True), text


# -- lines -------------------------------------------------------------------------------


def test_lines_of_documents_mappings_keys_lists_and_items() -> None:
    text = (
        "# comment\n"  # 1
        "---\n"  # 2
        "kind: Deployment\n"  # 3
        "spec:\n"  # 4
        "  containers:\n"  # 5
        "    - name: a\n"  # 6
        "      env:\n"  # 7
        "        - {name: X, value: '1'}\n"  # 8
        "    - name: b\n"  # 9
        "---\n"  # 10
        "\n"  # 11
        "- [x,\n"  # 12
        "   y]\n"  # 13
    )
    [(first, first_line), (second, second_line)] = load_documents(FILE, text)
    assert (first_line, second_line) == (3, 12)
    assert isinstance(first, MarkedMap) and isinstance(second, MarkedList)
    spec = first["spec"]
    assert (first.line, first.line_of("spec"), spec.line, spec.line_of("containers")) == (
        3,
        4,
        5,
        5,
    )
    containers = spec["containers"]
    assert (containers.line, containers.item_lines) == (6, [6, 9])
    env = containers[0]["env"]
    assert (env.line_of(0), env[0].line, env[0].line_of("value")) == (8, 8, 8)
    assert second[0].item_lines == [12, 13]
    assert first.line_of("absent") == 3 and containers.line_of(7) == 6  # fallbacks


def test_empty_documents_and_files() -> None:
    assert load_documents(FILE, "") == []
    assert load_documents(FILE, "# only a comment\n") == []
    assert load_documents(FILE, "---\n---\na: 1\n") == [(None, 2), ({"a": 1}, 3)]
    assert load_documents(FILE, "--- 5\n") == [(5, 1)]


# -- anchors and aliases -----------------------------------------------------------------


def test_an_alias_is_a_fresh_copy_keeping_the_lines_where_it_is_written() -> None:
    doc = _one("a: &x\n  - p\n  - {q: r}\nb:\n  - z\n  - *x\n")
    assert doc["b"][1] == doc["a"] == ["p", {"q": "r"}]
    assert doc["b"][1] is not doc["a"] and doc["b"][1][1] is not doc["a"][1]
    assert doc["b"].item_lines == [5, 6]  # the alias is written on line 6
    assert (doc["b"][1].line, doc["b"][1].item_lines) == (1, [2, 3])  # its value: &x on 1
    doc["b"][1][1]["q"] = "changed"  # importers may rewrite values (compose interpolates)
    assert doc["a"][1]["q"] == "r"


def test_merge_keys_order_precedence_and_lines() -> None:
    text = (
        "base: &base {image: a, restart: always}\n"  # 1
        "more: &more {image: b, cpus: 2}\n"  # 2
        "svc:\n"  # 3
        "  name: s\n"  # 4
        "  <<: [*base, *more]\n"  # 5
        "  restart: never\n"  # 6
    )
    svc = _one(text)["svc"]
    assert list(svc.items()) == [("name", "s"), ("image", "a"), ("cpus", 2), ("restart", "never")]
    assert svc.key_lines == {"name": 4, "image": 1, "cpus": 2, "restart": 6}
    assert _one("a: <<\n'<<': 1\nb: [<<]\n") == {"a": "<<", "<<": 1, "b": ["<<"]}
    assert _error("a:\n  <<: 5\n").line == 2
    error = _error("a:\n  <<: {x: 1}\n  <<: {y: 2}\n")
    assert (error.line, "duplicate key '<<' (first on line 2)" in str(error)) == (3, True)


def test_an_anchor_may_be_redefined_and_an_alias_means_the_latest() -> None:
    assert _one("a: &x 1\nb: &x [2]\nc: *x\n") == {"a": 1, "b": [2], "c": [2]}
    assert _one("a: &x [&x 1, *x]\nb: *x\n") == {"a": [1, 1], "b": 1}


def test_self_referencing_and_undefined_anchors_are_errors() -> None:
    for text, line in [
        ("a: &x [1, *x]\n", 1),
        ("a: &x\n  b:\n    c: *x\n", 3),
        ("base: &b\n  <<: *b\n", 2),
    ]:
        error = _error(text)
        assert (error.line, "inside its own anchor's value" in str(error)) == (line, True), text
    error = _error("a: 1\nb: *nowhere\n")
    assert (error.line, "alias *nowhere has no anchor" in str(error)) == (2, True)


def test_billion_laughs_is_refused() -> None:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 10):
        aliases = ", ".join([f"*l{level - 1}"] * 10)
        lines.append(f"l{level}: &l{level} [{aliases}]")
    error = _error("\n".join(lines) + "\n")  # 10**10 values; l4 would copy 111,110
    assert (error.line, "aliases expand to too many values (at *l3" in str(error)) == (5, True)


def test_aliases_within_reason_are_allowed() -> None:
    anchor = "x: &x {" + ", ".join(f"k{i}: {i}" for i in range(50)) + "}\n"
    uses = "".join(f"s{i}: *x\n" for i in range(1000))  # 50,000 entries from one line
    doc = _one(anchor + uses)
    assert len(doc) == 1001 and doc["s999"]["k49"] == 49


def test_aliased_compose_values_are_interpolated_once(tmp_path: Path) -> None:
    """``$$`` in a value two services share through an alias stays one ``$`` in both."""
    file = tmp_path / "compose.yaml"
    file.write_text(
        "x-env: &env\n  PRICE: 'in $$USD'\n  PEER: http://b:80\n"
        "services:\n  a: {image: x, environment: *env}\n  b: {image: y, environment: *env}\n"
    )
    result = compose.parse([file], "t")
    assert result.warnings == ()  # not "variable USD is not set"
    assert {(e.source, e.target) for e in result.edges} == {("a", "b")}


# -- strictness and malformed input ------------------------------------------------------


def test_duplicate_keys_name_both_lines() -> None:
    error = _error("a: 1\nb:\n  c: 2\n  c: 3\n")
    assert error.line == 4
    assert "duplicate key 'c' (first on line 3)" in str(error)
    assert _error("{1: a, 1: b}\n").line == 1
    assert _one("base: &b {x: 1}\nm:\n  <<: *b\n  x: 2\n")["m"] == {"x": 2}  # overriding


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("a: [x\n", 2, "malformed YAML"),
        ("a: b: c\n", 1, "mapping values are not allowed"),
        ("a:\n\t- x\n", 2, "malformed YAML"),
        ("a: 'open\n", 2, "malformed YAML"),
        ("? [1]\n: x\n", 1, "a mapping or list as a key"),
        ("[" * 201 + "]" * 201, 1, "nested more than 200 levels"),
        ("- a\n--- [\n", 3, "malformed YAML"),
    ],
)
def test_malformed_yaml_names_file_and_line(text: str, line: int, problem: str) -> None:
    error = _error(text)
    assert (error.line, problem in str(error)) == (line, True), str(error)
    assert str(error).startswith(f"{FILE}:{line}: ")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(GraphInputError, match="no such file"):
        load_documents(tmp_path / "missing.yaml")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(GraphInputError, match="not UTF-8"):
        read_text(latin)
    good = tmp_path / "good.yaml"
    good.write_text("a: 1\n")
    assert load_documents(good) == [({"a": 1}, 1)]


# -- the pure-Python parser and real inputs ----------------------------------------------


def _real_inputs() -> list[Path]:
    suffixes = {".yaml", ".yml"}
    return sorted(p for p in DATA.rglob("*") if p.suffix in suffixes and p.is_file())


def test_real_inputs_load_the_same_with_libyaml_and_pure_python() -> None:
    files = _real_inputs()
    assert len(files) > 20
    for file in files:
        text = file.read_text(encoding="utf-8")
        with_c, pure = _load(file, text, yaml.CBaseLoader), _load(file, text, yaml.BaseLoader)
        assert with_c == pure, file
        assert _lines(with_c) == _lines(pure), file


def _lines(value: Any) -> Any:
    if isinstance(value, MarkedMap):
        return [value.line, value.key_lines, [_lines(v) for v in value.values()]]
    if isinstance(value, MarkedList):
        return [value.line, value.item_lines, [_lines(v) for v in value]]
    if isinstance(value, list | tuple):
        return [_lines(v) for v in value]
    return None


def test_real_compose_file_values_and_lines() -> None:
    file = DATA / "otel-demo" / "compose.yaml"
    [(doc, line)] = load_documents(file)
    lines = file.read_text(encoding="utf-8").splitlines()
    assert lines[line - 1].startswith("x-default-logging:")
    services = doc["services"]
    frontend = services["frontend"]
    assert lines[services.line_of("frontend") - 1] == "  frontend:"
    assert frontend["logging"] == {
        "driver": "json-file",
        "options": {"max-size": "5m", "max-file": "2"},
    }
    assert frontend["logging"] is not services["cart"]["logging"]


TEXT_CHARS = st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"])  # JSON can escape
TEXT = st.text(TEXT_CHARS)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: (  # (short keys: YAML allows implicit keys of at most 1,024 characters)
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(TEXT_CHARS, max_size=20), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(JSON)
def test_json_documents_load_as_the_same_values(value: Any) -> None:
    """JSON is YAML 1.2: every JSON document loads as the value it was dumped from."""
    text = json.dumps(value, indent=1)
    [(loaded, _)] = load_documents(FILE, text)
    assert loaded == value
    assert plain(loaded) == value


@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), JSON, max_size=8))
def test_key_lines_follow_the_text(value: dict[str, Any]) -> None:
    """Each top-level key of a block mapping is on the line where the text has it."""
    text = yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=1000)
    [(loaded, _)] = load_documents(FILE, text)
    lines = text.splitlines()
    for key in value:  # (PyYAML quotes keys YAML 1.1 reads otherwise, such as 'on')
        assert lines[loaded.line_of(key) - 1].lstrip("'").startswith(f"{key}")
