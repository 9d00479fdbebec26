"""Input pruning: a bundle gets only the input subtrees its code mentions, and it cannot tell."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placet.policy import PolicyBundle, sample_input
from placet.policy.references import Pruner, code_only, input_paths
from tests.policy.helpers import HEADER, library_with


def test_code_only_blanks_comments_and_strings() -> None:
    source = 'a := "input # not a comment \\" still" # input.x\nb := `raw input` + input.y\n'
    code = code_only(source)
    assert code == 'a := ""' + " " * 10 + '\nb := "" + input.y\n'
    assert len(code_only(source).splitlines()) == len(source.splitlines())


@pytest.mark.parametrize(
    ("source", "paths"),
    [
        ("x := input.proposal.kind", (("proposal", "kind"),)),
        (
            "x := input.proposal.kind\ny := input.proposal",
            (("proposal",),),
        ),
        (
            "x := input.proposal.parameters.argv[0]\ny := input.now",
            (("now",), ("proposal", "parameters", "argv")),
        ),
        ("import input.proposal.agent as a\nx := a.name", (("proposal", "agent"),)),
        ('x := "input"\n# input\ny := input.a', (("a",),)),
        ("x := my_input.a\ny := data.input.b\nz := input_c", ()),
        ("x := input", None),
        ("x := input[k]", None),
        ("import input", None),
        ('x := y with input as {"a": 1}', None),
        ("f(input)", None),
        # object.get(input, path, default) reads the subtree its literal path names.
        ('x := object.get(input, ["a", "b"], 1)', (("a", "b"),)),
        ('x := object.get(input, "a", 1)', (("a",),)),
        ("x := object.get(input, [`a b`], 1)", (("a b",),)),
        ('x := object.get( input ,\n\t[ "a" , k, "c"], 1)', (("a",),)),
        ('x := object.get(input, ["a", 0], 1)', (("a",),)),
        ('x := object.get(input, ["a", "b"], 1)\ny := input.a.c', (("a", "b"), ("a", "c"))),
        ('x := object.get(input, ["a", "b"], 1)\ny := input.a', (("a",),)),
        ('# object.get(input, "a", 1)\nx := object.get(input, "b", 1)', (("b",),)),
        ('x := "q"\ny := object.get(input, ["b"], "d")', (("b",),)),
        ('x := object.get(object.get(input, "a", {}), "b", 1)', (("a",),)),
        # ... but anything it cannot read as a literal path sends everything.
        ("x := object.get(input, k, 1)", None),
        ('x := object.get(input, [k, "a"], 1)', None),
        ("x := object.get(input, [], 1)", None),
        ('x := object.get(input, ["a\\"b"], 1)', None),
        ('x := object.get(input, "a" + k, 1)', None),
        ('x := object.get(input, "a", input)', None),
        ('x := my.object.get(input, "a", 1)', None),
        ('x := object.keys(input, "a")', None),
    ],
)
def test_input_paths(source: str, paths: tuple[tuple[str, ...], ...] | None) -> None:
    assert input_paths([source]) == paths


def test_paths_from_several_files_merge() -> None:
    assert input_paths(["a := input.x.y", "b := input.x", "c := input.z"]) == (("x",), ("z",))
    assert input_paths(["a := input.x.y", "b := input"]) is None


def test_pruner_keeps_whole_subtrees_and_nothing_else() -> None:
    document = {
        "proposal": {"kind": "k", "parameters": {"argv": ["a"], "n": 1}, "intent": "secret"},
        "assessment": {"targets": []},
        "now": "t",
    }
    prune = Pruner((("now",), ("proposal", "parameters"), ("proposal", "missing", "deep")))
    assert prune(document) == {"proposal": {"parameters": {"argv": ["a"], "n": 1}}, "now": "t"}
    assert Pruner(None)(document) is document
    through_a_list = Pruner((("proposal", "parameters", "argv", "x"),))
    assert through_a_list(document) == {"proposal": {"parameters": {"argv": ["a"]}}}


# A policy reading many parts of the input in many ways; the same policy with one extra
# rule that mentions ``input`` as a whole gets the whole document. They must agree.
READER = (
    HEADER
    + "import input.proposal.agent as agent\n\n"
    + "first_word := input.proposal.parameters.argv[0]\n\n"
    + "teams := {t | some t in agent.teams}\n\n"
    + "radius := object.keys(input.assessment.blast_radius)\n\n"
    + "decision := {\n"
    + '\t"outcome": "deny",\n'
    + '\t"reasons": [sprintf("%v|%v|%v|%v|%v", [first_word, teams, radius, '
    + "count(input.proposal.targets), input.now])],\n"
    + "} if {\n"
    + '\tfirst_word == "rm"\n'
    + '} else := {"outcome": "allow", "reasons": [sprintf("%v %v", [teams, radius])]}\n'
)
WHOLE = READER + "\neverything := input\n"

_bundles: dict[str, PolicyBundle] = {}


def _library(name: str, extra: dict[str, str]) -> PolicyBundle:
    if name not in _bundles:
        _bundles[name] = PolicyBundle.from_files(library_with(extra), name=name)
    return _bundles[name]


def _bundle(name: str, source: str) -> PolicyBundle:
    if name not in _bundles:
        _bundles[name] = PolicyBundle.from_files({"p.rego": source}, name=name)
    return _bundles[name]


def test_the_reader_policy_is_pruned_and_the_whole_one_is_not() -> None:
    assert _bundle("pruned", READER).input_paths == (
        ("assessment", "blast_radius"),
        ("now",),
        ("proposal", "agent"),
        ("proposal", "parameters", "argv"),
        ("proposal", "targets"),
    )
    assert _bundle("whole", WHOLE).input_paths is None


words = st.text(alphabet="abrm-", min_size=0, max_size=4)
json_leaf = st.none() | st.booleans() | st.integers(-5, 5) | words


@settings(max_examples=80, deadline=None)
@given(
    argv=st.lists(words, max_size=3),
    teams=st.lists(words, max_size=3),
    targets=st.lists(words, max_size=4),
    radius=st.dictionaries(words, json_leaf, max_size=3),
    drop=st.sampled_from(["", "parameters", "agent", "targets", "assessment", "now"]),
)
def test_pruning_never_changes_an_answer(
    argv: list[str],
    teams: list[str],
    targets: list[str],
    radius: dict[str, Any],
    drop: str,
) -> None:
    document = sample_input()
    document["proposal"]["parameters"]["argv"] = argv
    document["proposal"]["agent"]["teams"] = teams
    document["proposal"]["targets"] = targets
    document["assessment"]["blast_radius"] = radius
    if drop in ("parameters", "agent", "targets"):
        del document["proposal"][drop]
    elif drop:
        del document[drop]
    pruned = _bundle("pruned", READER).query(document)
    whole = _bundle("whole", WHOLE).query(document)
    assert pruned == whole


# The default bundle reads the assessment through object.get: its pruned input must give
# the same decision as the whole document, whatever the assessment holds or lacks.
ids = st.sampled_from(["service:checkout", "service:ghost", "db:orders", "queue:jobs"])
DROPS = (
    *("", "assessment", "blast_radius", "unknown_targets", "internet_reachable"),
    *("count", "revenue_path", "data_classes", "graph_version", "targets"),
)


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["restart", "deploy", "patch", "drop_database"]),
    environment=st.sampled_from(["staging", "production"]),
    unknown=st.lists(ids, max_size=3),
    count=st.integers(0, 60),
    revenue_path=st.booleans(),
    data_classes=st.lists(st.sampled_from(["pci", "pii", "phi"]), max_size=3),
    graph_version=st.none() | st.just({"id": "gv_1", "digest": "ef" * 32}),
    reachable=st.lists(ids, max_size=2),
    drop=st.sampled_from(DROPS),
)
def test_pruning_never_changes_the_default_bundles_answer(
    kind: str,
    environment: str,
    unknown: list[str],
    count: int,
    revenue_path: bool,
    data_classes: list[str],
    graph_version: dict[str, str] | None,
    reachable: list[str],
    drop: str,
) -> None:
    pruned_bundle = _library("default-pruned", {})
    whole_bundle = _library(
        "default-whole", {"everything.rego": "package placet\n\neverything := input\n"}
    )
    assert pruned_bundle.input_paths is not None
    assert whole_bundle.input_paths is None
    document = sample_input(kind=kind, environment=environment)
    assessment = document["assessment"]
    assessment["graph_version"] = graph_version
    assessment["unknown_targets"] = unknown
    assessment["internet_reachable"] = reachable
    radius = assessment["blast_radius"]
    radius.update(count=count, revenue_path=revenue_path, data_classes=data_classes)
    if drop == "assessment":
        del document["assessment"]
    elif drop in radius:
        del radius[drop]
    elif drop:
        del assessment[drop]
    assert pruned_bundle.query(document) == whole_bundle.query(document)
