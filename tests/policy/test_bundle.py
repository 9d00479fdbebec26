"""Loading bundles from directories: files read, digest, names and load errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import rfc8785

from placet.domain.errors import PlacetError
from placet.domain.lifecycle import Outcome
from placet.policy import (
    POLICY_DIR_ENV,
    PolicyBundle,
    PolicyError,
    bundle_digest,
    configured_bundle,
    default_bundle,
    sample_input,
)
from tests.policy.conftest import BundleWriter
from tests.policy.helpers import HEADER, decision_rule

ALLOW = decision_rule('{"outcome": "allow", "reasons": ["fine"], "obligations": obligations}')
HELPERS = HEADER + "obligations := {}\n"


def test_digest_is_sha256_of_canonical_json_of_file_hashes(write_bundle: BundleWriter) -> None:
    directory = write_bundle({"main.rego": ALLOW, "lib/helpers.rego": HELPERS})
    bundle = PolicyBundle.load(directory)
    files = {
        "lib/helpers.rego": hashlib.sha256(HELPERS.encode()).hexdigest(),
        "main.rego": hashlib.sha256(ALLOW.encode()).hexdigest(),
    }
    expected = hashlib.sha256(rfc8785.dumps(files)).hexdigest()
    assert bundle.digest == expected
    assert dict(bundle.files) == files
    assert list(bundle.files) == sorted(files)
    assert bundle_digest({k: v.encode() for k, v in [("main.rego", ALLOW)]}) != expected


def test_digest_is_stable_across_loads(write_bundle: BundleWriter) -> None:
    directory = write_bundle({"main.rego": ALLOW, "lib/helpers.rego": HELPERS})
    assert PolicyBundle.load(directory).digest == PolicyBundle.load(directory).digest
    copy = write_bundle({"lib/helpers.rego": HELPERS, "main.rego": ALLOW})
    assert PolicyBundle.load(copy).digest == PolicyBundle.load(directory).digest


def test_digest_changes_when_a_file_changes(write_bundle: BundleWriter) -> None:
    directory = write_bundle({"main.rego": ALLOW, "lib/helpers.rego": HELPERS})
    before = PolicyBundle.load(directory).digest
    (directory / "lib" / "helpers.rego").write_text(HELPERS + "\n# a comment\n")
    after_edit = PolicyBundle.load(directory).digest
    assert after_edit != before
    (directory / "lib" / "helpers.rego").rename(directory / "lib" / "renamed.rego")
    after_rename = PolicyBundle.load(directory).digest
    assert after_rename not in (before, after_edit)
    (directory / "extra.rego").write_text(HEADER + "unused := 1\n")
    assert PolicyBundle.load(directory).digest not in (before, after_edit, after_rename)


def test_only_rego_files_count(write_bundle: BundleWriter) -> None:
    directory = write_bundle({"main.rego": ALLOW, "lib/helpers.rego": HELPERS})
    before = PolicyBundle.load(directory)
    (directory / "README.md").write_text("notes")
    (directory / "lib" / "data.json").write_text("{}")
    after = PolicyBundle.load(directory)
    assert after.digest == before.digest
    assert set(after.files) == {"main.rego", "lib/helpers.rego"}


def test_rules_in_several_files_and_packages_combine(write_bundle: BundleWriter) -> None:
    directory = write_bundle(
        {
            "a/limits.rego": "package placet.limits\n\nimport rego.v1\n\nmax_targets := 2\n",
            "b/decision.rego": HEADER
            + "import data.placet.limits\n\n"
            + 'decision := {"outcome": "deny", "reasons": ["too many targets"]} if {\n'
            + "\tcount(input.proposal.targets) > limits.max_targets\n"
            + '} else := {"outcome": "allow", "reasons": ["few targets"]}\n',
        }
    )
    bundle = PolicyBundle.load(directory)
    document = sample_input()
    assert bundle.evaluate(document).outcome is Outcome.ALLOW
    document["proposal"]["targets"] = ["a", "b", "c"]
    assert bundle.evaluate(document).outcome is Outcome.DENY


def test_name_defaults_to_the_directory_name(write_bundle: BundleWriter) -> None:
    directory = write_bundle({"main.rego": ALLOW, "helpers.rego": HELPERS}, name="strict")
    assert PolicyBundle.load(directory).name == "strict"
    assert PolicyBundle.load(directory, name="custom").name == "custom"


def test_a_syntax_error_names_the_file_line_and_problem(write_bundle: BundleWriter) -> None:
    broken = HEADER + 'decision := {"outcome": "allow" if {\n'
    directory = write_bundle({"good.rego": HELPERS, "rules/broken.rego": broken})
    with pytest.raises(PolicyError) as caught:
        PolicyBundle.load(directory)
    message = str(caught.value)
    assert f"{directory}/rules/broken.rego:5:" in message
    assert "unclosed" in message
    assert "good.rego" not in message
    assert isinstance(caught.value, PlacetError)


def test_a_file_that_is_not_a_module_is_named(write_bundle: BundleWriter) -> None:
    directory = write_bundle({"main.rego": ALLOW, "helpers.rego": HELPERS, "notes.rego": "# hi\n"})
    with pytest.raises(PolicyError, match=r"notes\.rego:1:1: not a Rego module"):
        PolicyBundle.load(directory)


def test_a_file_that_is_not_utf8_is_named(write_bundle: BundleWriter) -> None:
    directory = write_bundle({"main.rego": ALLOW, "helpers.rego": HELPERS, "bad.rego": b"\xff\xfe"})
    with pytest.raises(PolicyError, match=r"bad\.rego: not UTF-8"):
        PolicyBundle.load(directory)


def test_a_rule_that_cannot_compile_is_reported(write_bundle: BundleWriter) -> None:
    source = HEADER + "decision contains 1\n\ndecision := 2\n"
    with pytest.raises(PolicyError, match="does not compile"):
        PolicyBundle.load(write_bundle({"main.rego": source}))


def test_an_unknown_function_is_caught_at_load(write_bundle: BundleWriter) -> None:
    source = decision_rule("no_such_function(input.proposal.kind)")
    with pytest.raises(PolicyError, match=r"no_such_function.*sample proposal at load"):
        PolicyBundle.load(write_bundle({"main.rego": source}))


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        PolicyBundle.load(tmp_path / "absent")


def test_a_file_is_not_a_bundle_directory(tmp_path: Path) -> None:
    path = tmp_path / "one.rego"
    path.write_text(ALLOW)
    with pytest.raises(PolicyError, match="is not a directory"):
        PolicyBundle.load(path)


def test_a_directory_without_rego_files(write_bundle: BundleWriter) -> None:
    directory = write_bundle({"README.md": "nothing here", "sub/data.json": "{}"})
    with pytest.raises(PolicyError, match=r"has no \.rego files"):
        PolicyBundle.load(directory)


def test_from_files_matches_a_directory_with_the_same_files(write_bundle: BundleWriter) -> None:
    files = {"main.rego": ALLOW, "lib/helpers.rego": HELPERS}
    from_disk = PolicyBundle.load(write_bundle(files))
    in_memory = PolicyBundle.from_files(files, name="memory")
    assert in_memory.digest == from_disk.digest
    assert in_memory.evaluate(sample_input()).outcome is Outcome.ALLOW
    with pytest.raises(PolicyError, match=r"no \.rego files"):
        PolicyBundle.from_files({}, name="empty")


def test_configured_bundle_prefers_the_argument_then_the_environment(
    write_bundle: BundleWriter,
) -> None:
    explicit = write_bundle({"main.rego": ALLOW, "helpers.rego": HELPERS}, name="explicit")
    from_env = write_bundle({"main.rego": ALLOW, "h.rego": HELPERS}, name="from-env")
    environ = {POLICY_DIR_ENV: str(from_env)}
    assert configured_bundle(explicit, environ).name == "explicit"
    assert configured_bundle(None, environ).name == "from-env"
    assert configured_bundle(None, {}) is default_bundle()
    assert configured_bundle(None, {POLICY_DIR_ENV: ""}) is default_bundle()
    with pytest.raises(PolicyError, match="does not exist"):
        configured_bundle(None, {POLICY_DIR_ENV: str(from_env / "missing")})
