"""Runner labels and selectors: parsing, normalising, and which runner a capsule may go to."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placet.domain.errors import InputError
from placet.domain.labels import (
    check_labels,
    check_selector,
    label_text,
    matches,
    parse_label_text,
    selector_for,
)


def test_label_text_parses_repeats_and_sorts() -> None:
    labels = parse_label_text("region=eu, env=prod,env=staging,env=prod")
    assert labels == {"env": ["prod", "staging"], "region": ["eu"]}
    assert label_text(labels) == "env=prod,env=staging,region=eu"
    assert parse_label_text("") == {}


@pytest.mark.parametrize(
    ("text", "words"),
    [("env", "is not key=value"), ("Env=prod", "label key 'Env'"), ("env=", "label env=''")],
)
def test_bad_label_text_names_the_problem(text: str, words: str) -> None:
    with pytest.raises(InputError, match=words) as caught:
        parse_label_text(text, "--labels")
    assert caught.value.field == "--labels"


def test_json_labels_take_a_value_or_a_list() -> None:
    assert check_labels({"env": "prod", "zone": ["b", "a"]}) == {
        "env": ["prod"],
        "zone": ["a", "b"],
    }
    assert check_labels(None) == {}
    with pytest.raises(InputError, match="must be an object"):
        check_labels(["env=prod"])


def test_the_environment_is_the_default_selector_and_runner_selector_overrides_it() -> None:
    assert selector_for("production", {"argv": ["true"]}) == {"env": "production"}
    assert selector_for("production", {"runner_selector": {"site": "lab"}}) == {"site": "lab"}
    with pytest.raises(InputError, match="runner_selector"):
        selector_for("production", {"runner_selector": {}})
    with pytest.raises(InputError, match="runner_selector"):
        check_selector({"env": ["a", "b"]})


def test_matching_needs_every_pair_and_fails_closed() -> None:
    labels = {"env": ["production", "staging"], "region": ["eu"]}
    assert matches({"env": "staging"}, labels)
    assert matches({"env": "production", "region": "eu"}, labels)
    assert not matches({"env": "production", "region": "us"}, labels)
    assert not matches({"env": "dev"}, labels)
    assert not matches({"env": "staging"}, {})
    assert not matches({}, labels)


@given(st.dictionaries(st.sampled_from(["env", "region", "site"]), st.sampled_from(["a", "b"])))
def test_a_runner_labelled_with_a_selector_matches_it(selector: dict[str, str]) -> None:
    labels = check_labels(selector)
    assert matches(selector, labels) == bool(selector)
