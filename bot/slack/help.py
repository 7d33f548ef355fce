"""Help texts: the command list, one command's usage, and what each role allows (read from the
permission table in bot/domain/roles.py, so the words never drift from the rules)."""

from bot.domain.roles import ORG_PERMISSIONS, PROJECT_PERMISSIONS, Action, OrgRole, ProjectRole

HELP_LINES = [
    ("help [roles]", "this message; `help roles` explains the roles"),
    ("whoami", "your roles, and what each lets you do"),
    ("projects", "projects you can see"),
    ("project create <project>", "create a project and its `default` key (org owners)"),
    ("create <project> <key-name> [expires <when>] [note <text…>]", "create a key; its secret is shown to you once"),
    ("list <project>", "keys of a project, masked, newest first"),
    ("show <project> <key-name>", "one key: status, note, expiry, creator, last use"),
    ("expiry <project> <key-name> <when>", "when a key expires: `30d`, `2027-03-01` or `never`"),
    ("disable <project> <key-name>", "switch a key off at once (it is refused until enabled)"),
    ("enable <project> <key-name>", "switch a disabled key back on"),
    ("roll <project> <key-name> [grace <dur>]", "a new secret; the old one works for the grace (24h; `0`: no grace)"),
    ("delete <project> <key-name>", "delete a key, after you confirm"),
    ("request <project> [expires <when>] [for <reason…>]", "ask the project's owners for a key (admin, read-write)"),
    ("requests [<project>]", "access requests you may decide on, and your own"),
    ("policy [<setting> <value>]", "the organization's key policy (org owners change it)"),
    ("grant <@user> <role> [<project>]", "give a role in the org, or in a project"),
    ("revoke <@user> [<project>]", "remove a role"),
    ("members [<project>]", "who holds which role"),
    ("audit <project>", "recent changes to a project"),
]

# Actions in the order people think of them, for "what this role allows".
_ORDER = [
    Action.CREATE_KEY,
    Action.LIST_KEYS,
    Action.MANAGE_KEYS,
    Action.DELETE_KEY,
    Action.READ_AUDIT,
    Action.SEE_POLICY,
    Action.SET_POLICY,
    Action.CREATE_PROJECT,
    Action.GRANT_ORG_ROLE,
    Action.GRANT_PROJECT_ROLE,
    Action.SEE_PROJECT,
    Action.SEE_MEMBERS,
    Action.REQUEST_KEY,
]
_KEY_ACTIONS = {Action.CREATE_KEY, Action.LIST_KEYS, Action.MANAGE_KEYS, Action.DELETE_KEY}


def usage_of(verb: str) -> str:
    """The usage line of the command starting with ``verb``."""
    for usage, _ in HELP_LINES:
        if usage.split()[0] == verb:
            return usage
    return "help"


def _phrase(actions: frozenset[Action], *, everywhere: bool) -> str:
    shown = [action.value for action in _ORDER if action in actions]
    if everywhere:
        shown = [s.replace("this project", "every project") for s in shown]
    if not shown:
        return "see no project or key (the role is for billing only)"
    text = ", ".join(shown)
    if not actions & _KEY_ACTIONS:
        text += " — but not see or change its keys"
    return text


def org_role_allows(role: OrgRole) -> str:
    """What an organization role lets its holder do, in words."""
    if role is OrgRole.OWNER:
        return "do everything in every project: " + _phrase(ORG_PERMISSIONS[role], everywhere=True)
    if role is OrgRole.MEMBER:
        return "see a project only with a project role in it — and no keys"
    return _phrase(ORG_PERMISSIONS[role], everywhere=True)


def project_role_allows(role: ProjectRole) -> str:
    """What a project role lets its holder do in that project, in words."""
    return _phrase(PROJECT_PERMISSIONS[role], everywhere=False)


def role_allows(role: str, *, project: bool) -> str:
    return project_role_allows(ProjectRole(role)) if project else org_role_allows(OrgRole(role))


def roles_text() -> str:
    org = "\n".join(f"• *{role.value}* — {org_role_allows(role)}" for role in OrgRole)
    proj = "\n".join(f"• *{role.value}* — {project_role_allows(role)}" for role in ProjectRole)
    return (
        "*Roles in keybot.* Only organization owners and a project's owners can see or change its keys.\n"
        f"*Organization roles* (`/apikeys grant @user <role>`):\n{org}\n"
        f"*Project roles* (`/apikeys grant @user <role> <project>`), within that project:\n{proj}"
    )


def role_phrase(role: str, *, project: str | None) -> str:
    """How a held role reads in a sentence: "a member of the organization", "read-only in `web`"."""
    if project is not None:
        return f"*{role}* in `{project}`"
    article = "an" if role[0] in "aeiou" else "a"
    return f"{article} *{role}* of the organization"

