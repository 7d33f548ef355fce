"""Roles and the permission table (DESIGN.md §1): one table, pure code, tested exhaustively."""

from enum import StrEnum

from bot.domain.errors import InvalidInput
from bot.domain.names import shown


class OrgRole(StrEnum):
    OWNER = "owner"
    BILLING_ADMIN = "billing-admin"
    MEMBER = "member"


class ProjectRole(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    READ_WRITE = "read-write"
    READ_ONLY = "read-only"


class Action(StrEnum):
    CREATE_PROJECT = "create projects"
    SEE_PROJECT = "see this project"
    CREATE_KEY = "create keys"
    LIST_KEYS = "list keys"
    MANAGE_KEYS = "manage keys (disable, enable, roll, expiry)"
    DELETE_KEY = "delete keys"
    SEE_MEMBERS = "see members"
    GRANT_ORG_ROLE = "grant or revoke organization roles"
    GRANT_PROJECT_ROLE = "grant or revoke project roles"
    READ_AUDIT = "read the audit log"
    SEE_POLICY = "see the key policy"
    SET_POLICY = "change the key policy"
    REQUEST_KEY = "request keys (an owner approves each)"


_KEY_ACTIONS = frozenset(
    {Action.CREATE_KEY, Action.LIST_KEYS, Action.MANAGE_KEYS, Action.DELETE_KEY, Action.READ_AUDIT}
)
_ORG_OWNER = frozenset(Action)
_PROJECT_OWNER = _KEY_ACTIONS | {
    Action.SEE_PROJECT,
    Action.SEE_MEMBERS,
    Action.GRANT_PROJECT_ROLE,
    Action.SEE_POLICY,
}
_PROJECT_VIEWER = frozenset({Action.SEE_PROJECT, Action.SEE_MEMBERS})
_PROJECT_REQUESTER = _PROJECT_VIEWER | {Action.REQUEST_KEY}  # access requests (DESIGN.md §5.4)

# What each role allows within one project's scope. Org roles apply to every project of the org.
ORG_PERMISSIONS: dict[OrgRole, frozenset[Action]] = {
    OrgRole.OWNER: _ORG_OWNER,
    OrgRole.BILLING_ADMIN: frozenset(),
    OrgRole.MEMBER: frozenset(),
}
PROJECT_PERMISSIONS: dict[ProjectRole, frozenset[Action]] = {
    ProjectRole.OWNER: _PROJECT_OWNER,
    ProjectRole.ADMIN: _PROJECT_REQUESTER,
    ProjectRole.READ_WRITE: _PROJECT_REQUESTER,
    ProjectRole.READ_ONLY: _PROJECT_VIEWER,
}

# Actions that make sense without a project (org scope).
ORG_SCOPED = frozenset({Action.CREATE_PROJECT, Action.GRANT_ORG_ROLE, Action.SET_POLICY})
# Actions about the whole org that a project role may also allow (an owner of any project sees the policy).
ANY_PROJECT = frozenset({Action.SEE_POLICY})


def allowed(action: Action, *, org_role: OrgRole | None, project_role: ProjectRole | None) -> bool:
    """Whether a user holding these roles may do ``action`` (in the project, if the action has one)."""
    if org_role is not None and action in ORG_PERMISSIONS[org_role]:
        return True
    if action in ORG_SCOPED:
        return False
    return project_role is not None and action in PROJECT_PERMISSIONS[project_role]


def required_roles(action: Action) -> str:
    """Human description of who may do ``action``, for refusals."""
    if action in ORG_SCOPED:
        return "an organization owner"
    if action in ANY_PROJECT:
        return "an organization owner or an owner of a project"
    if action in (Action.SEE_PROJECT, Action.SEE_MEMBERS):
        return "an organization owner or a role in this project"
    if action is Action.REQUEST_KEY:
        return "an organization owner, or an `admin` or `read-write` member of this project"
    return "an organization owner or an owner of this project"


def org_role_named(raw: str) -> OrgRole:
    """Resolve a role word in org scope."""
    for role in OrgRole:
        if raw.lower() == role.value:
            return role
    raise InvalidInput(
        f"`{shown(raw)}` is not an organization role. Organization roles: `owner`, `billing-admin`, `member`. "
        "To grant a project role, add the project: `/apikeys grant @user <role> <project>`."
    )


def project_role_named(raw: str) -> ProjectRole:
    """Resolve a role word in project scope."""
    for role in ProjectRole:
        if raw.lower() == role.value:
            return role
    raise InvalidInput(
        f"`{shown(raw)}` is not a project role. Project roles: `owner`, `admin`, `read-write`, `read-only`."
    )
