"""Orgs, projects and roles: scope(), visibility, members and owners, on SQLite and PostgreSQL."""

from datetime import timedelta

import pytest
from sqlalchemy import event, select

from bot.domain.errors import Conflict
from bot.domain.model import Org, Project, RoleGrant, Scope
from bot.domain.roles import OrgRole, ProjectRole
from storage import SqlStore
from storage.tables import orgs
from tests.storage.helpers import OWNER, T0, TEAM, World

MEMBER = "U0MEMBER"


async def _scope(store: SqlStore, user_id: str, project: str | None, team: str = TEAM) -> Scope | None:
    async with store.read() as tx:
        return await tx.scope(team_id=team, user_id=user_id, project_name=project)


async def test_scope_is_one_query(store: SqlStore, world: World) -> None:
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    try:
        scope = await _scope(store, OWNER, "web")
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", record)
    assert scope is not None and scope.project == world.project
    assert len(statements) == 1 and statements[0].lstrip().startswith("SELECT")


async def test_scope_is_none_when_the_team_has_no_org(store: SqlStore, world: World) -> None:
    assert await _scope(store, OWNER, "Web", team="T0OTHER") is None


async def test_scope_of_a_user_without_roles_has_the_org_and_nothing_else(
    store: SqlStore, world: World
) -> None:
    assert await _scope(store, "U0STRANGER", None) == Scope(org=world.org, org_role=None)


async def test_scope_of_a_user_without_roles_still_finds_the_project(store: SqlStore, world: World) -> None:
    assert await _scope(store, "U0STRANGER", "Web") == Scope(
        org=world.org, org_role=None, project=world.project, project_role=None
    )


async def test_scope_of_an_org_owner_carries_the_owner_role_and_the_project(
    store: SqlStore, world: World
) -> None:
    assert await _scope(store, OWNER, "Web") == Scope(
        org=world.org, org_role=OrgRole.OWNER, project=world.project, project_role=None
    )


async def test_scope_of_a_project_member_carries_its_project_role(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        await tx.set_project_role(project_id=world.project.id, user_id=MEMBER, role=ProjectRole.READ_ONLY)
    assert await _scope(store, MEMBER, "Web") == Scope(
        org=world.org, org_role=None, project=world.project, project_role=ProjectRole.READ_ONLY
    )
    assert await _scope(store, OWNER, "Web") == Scope(
        org=world.org, org_role=OrgRole.OWNER, project=world.project, project_role=None
    )


async def test_scope_with_an_unknown_project_has_no_project(store: SqlStore, world: World) -> None:
    assert await _scope(store, OWNER, "nope") == Scope(org=world.org, org_role=OrgRole.OWNER)


async def test_scope_matches_the_project_name_case_insensitively(store: SqlStore, world: World) -> None:
    scope = await _scope(store, OWNER, "wEB")
    assert scope is not None and scope.project == world.project
    assert scope.project.name == "Web"


async def test_scope_does_not_see_a_project_of_another_org(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        other = await tx.ensure_org(team_id="T0OTHER", name="Other", at=T0)
        await tx.add_project(org_id=other.id, name="Api", created_by=OWNER, at=T0)
    scope = await _scope(store, OWNER, "Api")
    assert scope is not None and scope.project is None


async def test_ensure_org_is_idempotent_and_keeps_the_first_creation_time(store: SqlStore) -> None:
    async with store.transaction() as tx:
        first = await tx.ensure_org(team_id=TEAM, name="Acme", at=T0)
    async with store.transaction() as tx:
        second = await tx.ensure_org(team_id=TEAM, name="Renamed", at=T0 + timedelta(days=1))
    assert first == second == Org(id=first.id, team_id=TEAM, name="Acme")
    async with store.engine.connect() as conn:
        created = (await conn.execute(select(orgs.c.created_at))).scalars().all()
    assert created == [T0]


async def test_org_teams_lists_every_orgs_team_once_in_codepoint_order(store: SqlStore) -> None:
    async with store.read() as tx:
        assert await tx.org_teams() == []
    teams = ["T0003", "Tb", "T0001", "TC", "E0001"]
    async with store.transaction() as tx:
        for n, team in enumerate(teams):
            await tx.ensure_org(team_id=team, name=f"Org {n}", at=T0)
        await tx.ensure_org(team_id="T0001", name="Again", at=T0)
    async with store.read() as tx:
        listed = await tx.org_teams()
    assert listed == ["E0001", "T0001", "T0003", "TC", "Tb"]


async def test_duplicate_project_name_differing_in_case_is_a_conflict(store: SqlStore, world: World) -> None:
    with pytest.raises(Conflict, match="WEB"):
        async with store.transaction() as tx:
            await tx.add_project(org_id=world.org.id, name="WEB", created_by=OWNER, at=T0)


async def test_the_same_project_name_in_two_orgs_is_fine(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        other = await tx.ensure_org(team_id="T0OTHER", name="Other", at=T0)
        project = await tx.add_project(org_id=other.id, name="web", created_by=OWNER, at=T0)
    assert project.org_id == other.id


async def test_project_lookup_by_id(store: SqlStore, world: World) -> None:
    async with store.read() as tx:
        assert await tx.project_by_id(world.project.id) == world.project
        assert await tx.project_by_id(world.project.id + 1000) is None


async def test_org_owners_see_every_project_sorted_by_name_and_members_only_theirs(
    store: SqlStore, world: World
) -> None:
    async with store.transaction() as tx:
        api = await tx.add_project(org_id=world.org.id, name="api", created_by=OWNER, at=T0)
        zed = await tx.add_project(org_id=world.org.id, name="Zed", created_by=OWNER, at=T0)
        await tx.set_project_role(project_id=zed.id, user_id=MEMBER, role=ProjectRole.ADMIN)
        await tx.set_project_role(project_id=api.id, user_id=MEMBER, role=ProjectRole.READ_ONLY)
    async with store.read() as tx:
        every = await tx.visible_projects(org_id=world.org.id, user_id=OWNER, all_projects=True)
        mine = await tx.visible_projects(org_id=world.org.id, user_id=MEMBER, all_projects=False)
        none = await tx.visible_projects(org_id=world.org.id, user_id=OWNER, all_projects=False)
    assert [p.name for p in every] == ["api", "Web", "Zed"]
    assert mine == [api, zed]
    assert none == []


async def test_setting_a_role_again_replaces_it_and_deleting_reports_whether_it_existed(
    store: SqlStore, world: World
) -> None:
    org_id, project_id = world.org.id, world.project.id
    async with store.transaction() as tx:
        await tx.set_org_role(org_id=org_id, user_id=MEMBER, role=OrgRole.MEMBER)
        await tx.set_org_role(org_id=org_id, user_id=MEMBER, role=OrgRole.BILLING_ADMIN)
        await tx.set_project_role(project_id=project_id, user_id=MEMBER, role=ProjectRole.ADMIN)
        await tx.set_project_role(project_id=project_id, user_id=MEMBER, role=ProjectRole.OWNER)
    async with store.transaction() as tx:
        assert await tx.org_role(org_id=org_id, user_id=MEMBER) is OrgRole.BILLING_ADMIN
        assert await tx.project_role(project_id=project_id, user_id=MEMBER) is ProjectRole.OWNER
        assert await tx.delete_org_role(org_id=org_id, user_id=MEMBER)
        assert not await tx.delete_org_role(org_id=org_id, user_id=MEMBER)
        assert await tx.delete_project_role(project_id=project_id, user_id=MEMBER)
        assert not await tx.delete_project_role(project_id=project_id, user_id=MEMBER)
        assert await tx.org_role(org_id=org_id, user_id=MEMBER) is None
        assert await tx.project_role(project_id=project_id, user_id=MEMBER) is None


async def test_roles_of_lists_the_org_role_then_project_roles_by_project_name(
    store: SqlStore, world: World
) -> None:
    async with store.transaction() as tx:
        api = await tx.add_project(org_id=world.org.id, name="api", created_by=OWNER, at=T0)
        await tx.set_org_role(org_id=world.org.id, user_id=MEMBER, role=OrgRole.MEMBER)
        await tx.set_project_role(project_id=world.project.id, user_id=MEMBER, role=ProjectRole.OWNER)
        await tx.set_project_role(project_id=api.id, user_id=MEMBER, role=ProjectRole.READ_WRITE)
        await tx.set_project_role(project_id=api.id, user_id=OWNER, role=ProjectRole.ADMIN)
    async with store.read() as tx:
        roles = await tx.roles_of(org_id=world.org.id, user_id=MEMBER)
        nobody = await tx.roles_of(org_id=world.org.id, user_id="U0NOBODY")
    assert roles == [
        RoleGrant(user_id=MEMBER, role="member", project=None),
        RoleGrant(user_id=MEMBER, role="read-write", project="api"),
        RoleGrant(user_id=MEMBER, role="owner", project="Web"),
    ]
    assert nobody == []


async def test_members_lists_org_roles_or_one_projects_roles(store: SqlStore, world: World) -> None:
    async with store.transaction() as tx:
        await tx.set_org_role(org_id=world.org.id, user_id=MEMBER, role=OrgRole.MEMBER)
        await tx.set_project_role(project_id=world.project.id, user_id=MEMBER, role=ProjectRole.ADMIN)
        await tx.set_project_role(project_id=world.project.id, user_id="U0A", role=ProjectRole.OWNER)
    async with store.read() as tx:
        org_members = await tx.members(org_id=world.org.id, project_id=None)
        project_members = await tx.members(org_id=world.org.id, project_id=world.project.id)
    assert org_members == [
        RoleGrant(user_id=MEMBER, role="member", project=None),
        RoleGrant(user_id=OWNER, role="owner", project=None),
    ]
    assert project_members == [
        RoleGrant(user_id="U0A", role="owner", project="Web"),
        RoleGrant(user_id=MEMBER, role="admin", project="Web"),
    ]


async def test_project_owners_are_org_owners_and_project_owners_each_once_sorted(
    store: SqlStore, world: World
) -> None:
    async with store.transaction() as tx:
        other: Project = await tx.add_project(org_id=world.org.id, name="Other", created_by=OWNER, at=T0)
        await tx.set_project_role(project_id=world.project.id, user_id="U0B", role=ProjectRole.OWNER)
        await tx.set_project_role(project_id=world.project.id, user_id=OWNER, role=ProjectRole.OWNER)
        await tx.set_project_role(project_id=world.project.id, user_id="U0C", role=ProjectRole.ADMIN)
        await tx.set_project_role(project_id=other.id, user_id="U0D", role=ProjectRole.OWNER)
        await tx.set_org_role(org_id=world.org.id, user_id="U0A", role=OrgRole.OWNER)
        await tx.set_org_role(org_id=world.org.id, user_id="U0E", role=OrgRole.BILLING_ADMIN)
    async with store.read() as tx:
        owners = await tx.project_owners(org_id=world.org.id, project_id=world.project.id)
    assert owners == ["U0A", "U0B", OWNER]
