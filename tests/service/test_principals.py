"""PrincipalService: roles, groups and memberships, and the import from the graph."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from placet.domain.authority import Role, roles_of
from placet.domain.errors import Conflict, InputError, NotFound
from placet.service.config import load_settings
from placet.service.control_plane import ControlPlane, initialise

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BACKSTAGE = DATA / "otel-demo-backstage"


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[ControlPlane]:
    """A control plane on an initialised data dir with nothing imported and nobody registered."""
    settings = load_settings(tmp_path / "data")
    initialise(settings)
    cp = ControlPlane.open(settings)
    yield cp
    cp.close()


def test_humans_default_to_viewer_and_roles_are_validated(bare: ControlPlane) -> None:
    add = bare.principals.add
    viewer, _ = add("vera", "human")
    assert viewer.roles == ("viewer",) and roles_of(viewer) == {Role.VIEWER}
    both, _ = add("ada", "human", None, (), ("admin", "approver", "admin"))
    assert both.roles == ("admin", "approver")
    with pytest.raises(InputError) as bad:
        add("zed", "human", None, (), ("superuser",))
    assert bad.value.field == "role" and "superuser" in str(bad.value)
    with pytest.raises(InputError) as agent_role:
        add("bot", "agent", "vera", (), ("approver",))
    assert agent_role.value.field == "role" and "an agent cannot hold roles" in str(
        agent_role.value
    )
    with pytest.raises(InputError, match="a runner cannot hold roles"):
        add("r1", "runner", "vera", (), ("runner",))
    assert [p.name for p in bare.principals.list()] == ["vera", "ada"]


def test_set_roles_replaces_and_refuses_machines(bare: ControlPlane) -> None:
    bare.principals.add("rita", "human")
    bare.principals.add("bot", "agent", "rita")
    updated = bare.principals.set_roles("rita", ["approver", "auditor"], "ada")
    assert updated.roles == ("approver", "auditor")
    assert bare.principals.get("rita").roles == ("approver", "auditor")
    assert bare.principals.set_roles("rita", [], "ada").roles == ("viewer",)
    with pytest.raises(InputError, match="auditer"):
        bare.principals.set_roles("rita", ["auditer"], "ada")
    with pytest.raises(InputError, match="bot is an agent"):
        bare.principals.set_roles("bot", ["viewer"], "ada")
    with pytest.raises(NotFound):
        bare.principals.set_roles("ghost", ["viewer"], "ada")
    view = bare.principals.view("rita")
    assert view["roles"] == ["viewer"] and "token" not in str(view) and view["created_at"]


def test_groups_and_memberships(bare: ControlPlane) -> None:
    people = bare.principals
    people.add("rita", "human")
    people.add("sam", "human")
    eng = people.add_group("engineering", kind="group", title="Engineering")
    assert eng == {
        **eng,
        "kind": "group",
        "title": "Engineering",
        "members": [],
        "source": "manual",
    }
    people.add_group("payments", parent="engineering")
    with pytest.raises(Conflict):
        people.add_group("payments")
    with pytest.raises(NotFound):
        people.add_group("x", parent="nope")
    with pytest.raises(InputError) as kind:
        people.add_group("y", kind="tribe")
    assert kind.value.field == "kind"
    with pytest.raises(InputError):
        people.add_group("bad name!")
    assert people.add_member("payments", "rita")["members"] == ["rita"]
    assert people.add_member("payments", "rita")["members"] == ["rita"]  # idempotent
    assert people.add_member("payments", "sam")["members"] == ["rita", "sam"]
    assert people.get("rita").teams == ("payments",)
    with pytest.raises(NotFound) as no_group:
        people.add_member("ghosts", "rita")
    assert no_group.value.what == "group"
    with pytest.raises(NotFound) as no_person:
        people.add_member("payments", "ghost")
    assert no_person.value.what == "principal"
    assert people.remove_member("payments", "sam")["members"] == ["rita"]
    with pytest.raises(NotFound) as not_member:
        people.remove_member("payments", "sam")
    assert not_member.value.what == "membership"
    listed = {g["name"]: g for g in people.list_groups()}
    assert listed["payments"]["parent"] == "engineering" and listed["payments"]["members"] == [
        "rita"
    ]
    people.add_member("engineering", "rita")
    report = people.remove_group("engineering")
    assert report == {"removed": "engineering", "memberships_removed": ["rita"]}
    assert people.get("rita").teams == ("payments",)
    assert people.get_group("payments")["parent"] is None  # the child is not orphaned
    with pytest.raises(NotFound):
        people.get_group("engineering")


def test_principal_add_team_creates_the_group(bare: ControlPlane) -> None:
    bare.principals.add("rita", "human", None, ("sre", "sre"), ("approver",))
    group = bare.principals.get_group("sre")
    assert group["kind"] == "team" and group["members"] == ["rita"]
    assert bare.principals.get("rita").teams == ("sre",)


def test_import_without_a_graph_says_so(bare: ControlPlane) -> None:
    with pytest.raises(NotFound, match="nothing imported yet"):
        bare.principals.import_groups_from_graph(bare.graph)


def test_import_groups_from_a_real_backstage_catalog(bare: ControlPlane) -> None:
    bare.graph.import_paths([BACKSTAGE / "backstage.yaml"], source="backstage")
    bare.principals.add("guest", "human")
    report = bare.principals.import_groups_from_graph(bare.graph)
    assert report["groups_created"] >= 1 and report["memberships_added"] == 1
    assert report["unknown_users"] == []
    devs = bare.principals.get_group("devs")
    current = bare.graph.current()
    assert current is not None
    assert devs["members"] == ["guest"] and devs["kind"] == "team"
    assert devs["source"] == f"graph:{current.digest}"
    again = bare.principals.import_groups_from_graph(bare.graph)
    assert again["groups_created"] == 0 and again["memberships_added"] == 0
    assert again["groups_updated"] == 0


def test_import_reports_unknown_users_and_parents(bare: ControlPlane, tmp_path: Path) -> None:
    catalog = tmp_path / "org.yaml"
    catalog.write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: eng}\n"
        "spec: {type: org, children: [payments]}\n---\n"
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: payments}\n"
        "spec: {type: team, parent: eng, children: [], members: [alice, bob]}\n---\n"
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: alice}\n"
        "spec: {memberOf: [payments]}\n---\n"
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: bob}\n"
        "spec: {memberOf: []}\n"
    )
    bare.graph.import_paths([catalog], source="org")
    bare.principals.add("alice", "human", None, (), ("approver",))
    bare.principals.add_group("payments", title="Old title")  # made by hand before
    report = bare.principals.import_groups_from_graph(bare.graph)
    assert report["groups_created"] == 1 and report["groups_updated"] == 1
    assert report["memberships_added"] == 1 and report["unknown_users"] == ["bob"]
    assert report["groups"] == ["eng", "payments"]
    payments = bare.principals.get_group("payments")
    assert payments["parent"] == "eng" and payments["members"] == ["alice"]
    assert payments["source"].startswith("graph:")
    assert bare.principals.get("alice").teams == ("payments",)
