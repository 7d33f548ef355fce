"""The Core statements of the hot paths, built once at module level so SQLAlchemy's compiled cache
always hits (and ``storage.fastpath`` can compile them once per store), with their row helpers."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, Select, String, and_, bindparam, func, null, or_, select, true, update

from bot.domain.model import Org, Project, Scope
from bot.domain.roles import OrgRole, ProjectRole
from storage.tables import api_keys, org_roles, orgs, project_roles, projects, retired_secrets

_retiring_at = (
    select(func.max(retired_secrets.c.retiring_at))
    .where(retired_secrets.c.key_row_id == api_keys.c.id)
    .scalar_subquery()
)  # one index probe per key: retired_secrets (key_row_id, retiring_at)

KEY_COLUMNS = (
    api_keys.c.id,
    api_keys.c.project_id,
    api_keys.c.key_id,
    api_keys.c.name,
    api_keys.c.masked,
    api_keys.c.created_by,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
    api_keys.c.expires_at,
    api_keys.c.disabled_at,
    api_keys.c.note,
    api_keys.c.changed_at,
    api_keys.c.changed_by,
    _retiring_at.label("retiring_at"),
)  # in KeyRecord's field order

_user = bindparam("user_id", type_=String)
SCOPE = (
    select(
        orgs.c.id,
        orgs.c.team_id,
        orgs.c.name,
        org_roles.c.role.label("org_role"),
        projects.c.id.label("project_id"),
        projects.c.name.label("project_name"),
        project_roles.c.role.label("project_role"),
    )
    .select_from(
        orgs.outerjoin(org_roles, and_(org_roles.c.org_id == orgs.c.id, org_roles.c.user_id == _user))
        .outerjoin(
            projects,
            and_(projects.c.org_id == orgs.c.id, projects.c.name_lower == bindparam("name_lower")),
        )
        .outerjoin(
            project_roles,
            and_(project_roles.c.project_id == projects.c.id, project_roles.c.user_id == _user),
        )
    )
    .where(orgs.c.team_id == bindparam("team_id"))
)

_limit = bindparam("limit", type_=Integer)
_keys_of_project = select(*KEY_COLUMNS).where(api_keys.c.project_id == bindparam("project_id"))
KEYS_NEWEST = _keys_of_project.order_by(api_keys.c.id.desc()).limit(_limit)
KEYS_BEFORE = KEYS_NEWEST.where(api_keys.c.id < bindparam("cursor"))
KEYS_AFTER = (
    _keys_of_project.where(api_keys.c.id > bindparam("cursor")).order_by(api_keys.c.id).limit(_limit)
)  # oldest first: the caller reverses the page
KEY_NAMED = _keys_of_project.where(api_keys.c.name_lower == bindparam("name_lower"))


def _listing(direction: str) -> Select[Any]:
    """``/apikeys list`` in one statement: the actor's scope (``SCOPE``), how many keys the project has,
    how many have a row id above ``above``, and one page of them, newest first (``direction``:
    ``newest``, ``before`` or ``after`` the ``cursor``). One row per key of the page, each repeating
    the scope and the counts; one row with NULL key columns when the page is empty (or the project is
    missing); no row when the workspace has no org."""
    scope = SCOPE.cte("scope")
    project_id = select(scope.c.project_id).scalar_subquery()
    of_project = api_keys.c.project_id == project_id
    keys = select(*KEY_COLUMNS).where(of_project)
    if direction == "after":
        keys = keys.where(api_keys.c.id > bindparam("cursor")).order_by(api_keys.c.id)
    else:
        if direction == "before":
            keys = keys.where(api_keys.c.id < bindparam("cursor"))
        keys = keys.order_by(api_keys.c.id.desc())
    page = keys.limit(_limit).cte("page")
    # kept on the project row by triggers on api_keys (0 when the project is missing)
    total = func.coalesce(select(projects.c.key_count).where(projects.c.id == project_id).scalar_subquery(), 0)
    # a range scan of the (project_id, id) index: cheap for the first pages, where people look
    above = select(func.count()).where(of_project, api_keys.c.id > bindparam("above", type_=Integer))
    return (
        select(*scope.c, total.label("total"), above.scalar_subquery().label("above"), *page.c)
        .select_from(scope.outerjoin(page, true()))
        .order_by(page.c.id.desc())
    )


LISTING_COLUMNS = len(SCOPE.selected_columns) + 2  # the key columns start here
LISTING_NEWEST = _listing("newest")
LISTING_BEFORE = _listing("before")
LISTING_AFTER = _listing("after")

_key_project_org = api_keys.join(projects, projects.c.id == api_keys.c.project_id).join(
    orgs, orgs.c.id == projects.c.org_id
)
VERIFY = (
    select(
        api_keys.c.id,
        api_keys.c.key_id,
        api_keys.c.name,
        api_keys.c.secret_hash,
        projects.c.name,
        orgs.c.name,
        api_keys.c.last_used_at,
        api_keys.c.disabled_at,
        api_keys.c.expires_at,
        null().label("retiring_at"),
    )  # in VerifyRecord's field order
    .select_from(_key_project_org)
    .where(api_keys.c.key_id == bindparam("key_id"))
)
# Only when VERIFY finds nothing: the key id may be a rolled key's old secret.
VERIFY_RETIRED = (
    select(
        api_keys.c.id,
        retired_secrets.c.key_id,
        api_keys.c.name,
        retired_secrets.c.secret_hash,
        projects.c.name,
        orgs.c.name,
        api_keys.c.last_used_at,
        api_keys.c.disabled_at,
        api_keys.c.expires_at,
        retired_secrets.c.retiring_at,
    )  # in VerifyRecord's field order
    .select_from(retired_secrets.join(_key_project_org, api_keys.c.id == retired_secrets.c.key_row_id))
    .where(retired_secrets.c.key_id == bindparam("key_id"))
)
# The re-check of a cached verification: one primary-key probe of the key, and of the secret's retired
# row if it was rolled away (None when the key is gone).
KEY_STATE = (
    select(
        api_keys.c.key_id,
        api_keys.c.disabled_at,
        api_keys.c.expires_at,
        retired_secrets.c.retiring_at,
    )  # in KeyState's field order
    .select_from(
        api_keys.outerjoin(
            retired_secrets,
            and_(
                retired_secrets.c.key_id == bindparam("key_id", type_=String),
                retired_secrets.c.key_row_id == api_keys.c.id,
            ),
        )
    )
    .where(api_keys.c.id == bindparam("row_id"))
)
TOUCH = (
    update(api_keys)
    .where(
        api_keys.c.id == bindparam("row_id"),
        or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < bindparam("at")),
    )
    .values(last_used_at=bindparam("at"))
)


def scope_params(team_id: str, user_id: str, project_name: str | None) -> dict[str, Any]:
    """The parameters of ``SCOPE``."""
    name_lower = None if project_name is None else project_name.lower()
    return {"team_id": team_id, "user_id": user_id, "name_lower": name_lower}


def scope_from_row(row: Sequence[Any]) -> Scope:
    """A ``Scope`` from one row of ``SCOPE``."""
    org_id, team_id, org_name, org_role, project_id, project_name, project_role = row
    org = Org(id=org_id, team_id=team_id, name=org_name)
    return Scope(
        org=org,
        org_role=None if org_role is None else OrgRole(org_role),
        project=None if project_id is None else Project(id=project_id, org_id=org_id, name=project_name),
        project_role=None if project_role is None else ProjectRole(project_role),
    )
