"""Who you are in ``keybot shell``: names become stable Slack user ids (``ana`` → ``UANA``)."""

import getpass
import re

USER_ID_RE = re.compile(r"[UW][A-Z0-9]{2,20}")


def user_id_for(name: str) -> str:
    """The Slack user id the shell uses for ``name``: ``ana`` → ``UANA``; a user id stays itself."""
    if USER_ID_RE.fullmatch(name):
        return name
    letters = re.sub(r"[^A-Za-z0-9]", "", name).upper()[:20]
    if not letters:
        raise ValueError(f"{name!r} has no letters or digits to make a user id from")
    return "U" + letters.ljust(2, "0")


def login_name() -> str:
    """The name of whoever runs the shell (their login), or ``you``."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        return "you"
    return name if re.search(r"[A-Za-z0-9]", name) else "you"
