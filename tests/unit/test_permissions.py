"""The permission table, checked against DESIGN.md §1 written out by hand (every role pair × every action)."""

import itertools

import pytest

from bot.domain.errors import InvalidInput
from bot.domain.roles import (
    Action,
    OrgRole,
    ProjectRole,
    allowed,
    org_role_named,
    project_role_named,
    required_roles,
)

COLUMNS = {
    "CP": Action.CREATE_PROJECT,
    "SP": Action.SEE_PROJECT,
    "CK": Action.CREATE_KEY,
    "LK": Action.LIST_KEYS,
    "MK": Action.MANAGE_KEYS,
    "DK": Action.DELETE_KEY,
    "SM": Action.SEE_MEMBERS,
    "GO": Action.GRANT_ORG_ROLE,
    "GP": Action.GRANT_PROJECT_ROLE,
    "RA": Action.READ_AUDIT,
    "VP": Action.SEE_POLICY,
    "XP": Action.SET_POLICY,
    "RK": Action.REQUEST_KEY,
}

# From DESIGN.md §1 and §5.1: org owners may do everything; billing-admin and member grant nothing about
# keys or projects by themselves; a project owner manages that project's keys (create, list, show,
# disable, enable, roll, expiry, delete), roles and audit log, and sees the org's key policy; admin,
# read-write and read-only only see the project and its members. Creating projects, org roles and
# changing the key policy are for org owners only. §5.4: admin and read-write members may request keys (an
# org owner's table allows it too; the service tells owners to create the key instead). A user holding two
# roles gets what either allows.
EXPECTED = """
org            project        CP SP CK LK MK DK SM GO GP RA VP XP RK
owner          owner          Y  Y  Y  Y  Y  Y  Y  Y  Y  Y  Y  Y  Y
owner          admin          Y  Y  Y  Y  Y  Y  Y  Y  Y  Y  Y  Y  Y
owner          read-write     Y  Y  Y  Y  Y  Y  Y  Y  Y  Y  Y  Y  Y
owner          read-only      Y  Y  Y  Y  Y  Y  Y  Y  Y  Y  Y  Y  Y
owner          -              Y  Y  Y  Y  Y  Y  Y  Y  Y  Y  Y  Y  Y
billing-admin  owner          .  Y  Y  Y  Y  Y  Y  .  Y  Y  Y  .  .
billing-admin  admin          .  Y  .  .  .  .  Y  .  .  .  .  .  Y
billing-admin  read-write     .  Y  .  .  .  .  Y  .  .  .  .  .  Y
billing-admin  read-only      .  Y  .  .  .  .  Y  .  .  .  .  .  .
billing-admin  -              .  .  .  .  .  .  .  .  .  .  .  .  .
member         owner          .  Y  Y  Y  Y  Y  Y  .  Y  Y  Y  .  .
member         admin          .  Y  .  .  .  .  Y  .  .  .  .  .  Y
member         read-write     .  Y  .  .  .  .  Y  .  .  .  .  .  Y
member         read-only      .  Y  .  .  .  .  Y  .  .  .  .  .  .
member         -              .  .  .  .  .  .  .  .  .  .  .  .  .
-              owner          .  Y  Y  Y  Y  Y  Y  .  Y  Y  Y  .  .
-              admin          .  Y  .  .  .  .  Y  .  .  .  .  .  Y
-              read-write     .  Y  .  .  .  .  Y  .  .  .  .  .  Y
-              read-only      .  Y  .  .  .  .  Y  .  .  .  .  .  .
-              -              .  .  .  .  .  .  .  .  .  .  .  .  .
"""


def _table() -> dict[tuple[OrgRole | None, ProjectRole | None, Action], bool]:
    header, *rows = EXPECTED.strip().splitlines()
    columns = [COLUMNS[c] for c in header.split()[2:]]
    table = {}
    for row in rows:
        org, project, *cells = row.split()
        org_role = None if org == "-" else OrgRole(org)
        project_role = None if project == "-" else ProjectRole(project)
        assert len(cells) == len(columns)
        for action, cell in zip(columns, cells, strict=True):
            table[(org_role, project_role, action)] = cell == "Y"
    return table


TABLE = _table()
ORG_ROLES: list[OrgRole | None] = [*OrgRole, None]
PROJECT_ROLES: list[ProjectRole | None] = [*ProjectRole, None]
CASES = list(itertools.product(ORG_ROLES, PROJECT_ROLES, Action))


def test_expected_table_covers_every_role_pair_and_every_action() -> None:
    assert set(COLUMNS.values()) == set(Action)
    assert set(TABLE) == set(CASES)


@pytest.mark.parametrize(
    ("org_role", "project_role", "action"),
    CASES,
    ids=[f"{o or 'no-org-role'}/{p or 'no-project-role'}/{a.name}" for o, p, a in CASES],
)
def test_allowed_matches_the_design_table(
    org_role: OrgRole | None, project_role: ProjectRole | None, action: Action
) -> None:
    assert (
        allowed(action, org_role=org_role, project_role=project_role)
        is TABLE[(org_role, project_role, action)]
    )


def test_only_org_owners_may_create_projects_change_org_roles_or_set_the_policy() -> None:
    for org_role, project_role in itertools.product(ORG_ROLES, PROJECT_ROLES):
        for action in (Action.CREATE_PROJECT, Action.GRANT_ORG_ROLE, Action.SET_POLICY):
            assert allowed(action, org_role=org_role, project_role=project_role) is (
                org_role is OrgRole.OWNER
            )


def test_read_only_member_cannot_list_keys() -> None:
    assert not allowed(Action.LIST_KEYS, org_role=OrgRole.MEMBER, project_role=ProjectRole.READ_ONLY)


def test_billing_admin_cannot_see_a_project_without_a_project_role() -> None:
    assert not allowed(Action.SEE_PROJECT, org_role=OrgRole.BILLING_ADMIN, project_role=None)


def test_org_scoped_actions_require_an_organization_owner() -> None:
    for action in (Action.CREATE_PROJECT, Action.GRANT_ORG_ROLE, Action.SET_POLICY):
        assert required_roles(action) == "an organization owner"


def test_seeing_the_policy_says_an_owner_of_any_project_is_enough() -> None:
    assert required_roles(Action.SEE_POLICY) == "an organization owner or an owner of a project"


@pytest.mark.parametrize("action", [Action.SEE_PROJECT, Action.SEE_MEMBERS])
def test_viewing_actions_say_any_project_role_is_enough(action: Action) -> None:
    assert required_roles(action) == "an organization owner or a role in this project"


@pytest.mark.parametrize(
    "action",
    [
        Action.CREATE_KEY,
        Action.LIST_KEYS,
        Action.MANAGE_KEYS,
        Action.DELETE_KEY,
        Action.GRANT_PROJECT_ROLE,
        Action.READ_AUDIT,
    ],
)
def test_key_and_project_role_actions_say_a_project_owner_is_needed(action: Action) -> None:
    assert required_roles(action) == "an organization owner or an owner of this project"


@pytest.mark.parametrize("action", list(Action))
def test_required_roles_wording_agrees_with_the_table(action: Action) -> None:
    wording = required_roles(action)
    assert "an organization owner" in wording
    project_owner_may = TABLE[(None, ProjectRole.OWNER, action)]
    read_only_may = TABLE[(None, ProjectRole.READ_ONLY, action)]
    assert ("a role in this project" in wording) is read_only_may
    assert ("an owner of" in wording) is (project_owner_may and not read_only_may)


@pytest.mark.parametrize(
    ("raw", "role"),
    [("owner", OrgRole.OWNER), ("Billing-Admin", OrgRole.BILLING_ADMIN), ("MEMBER", OrgRole.MEMBER)],
)
def test_org_role_words_are_case_insensitive(raw: str, role: OrgRole) -> None:
    assert org_role_named(raw) is role


@pytest.mark.parametrize(
    ("raw", "role"),
    [
        ("Owner", ProjectRole.OWNER),
        ("admin", ProjectRole.ADMIN),
        ("READ-WRITE", ProjectRole.READ_WRITE),
        ("read-only", ProjectRole.READ_ONLY),
    ],
)
def test_project_role_words_are_case_insensitive(raw: str, role: ProjectRole) -> None:
    assert project_role_named(raw) is role


@pytest.mark.parametrize("raw", ["admin", "read-only", "superuser", ""])
def test_a_project_only_role_word_is_not_an_org_role(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        org_role_named(raw)
    assert "billing-admin" in str(err.value)


@pytest.mark.parametrize("raw", ["billing-admin", "member", "root"])
def test_an_org_only_role_word_is_not_a_project_role(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        project_role_named(raw)
    assert "read-only" in str(err.value)


def test_an_unknown_role_word_is_echoed_without_markup() -> None:
    with pytest.raises(InvalidInput) as err:
        org_role_named("<!channel>`x`")
    assert "<!channel>" not in str(err.value)
    assert "`x`" not in str(err.value)


def test_requesting_a_key_says_which_project_roles_may() -> None:
    assert required_roles(Action.REQUEST_KEY) == "an organization owner, or an `admin` or `read-write` member of this project"
