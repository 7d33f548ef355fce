"""keybot installed in many workspaces: the OAuth v2 flow, whose token each Web API call uses, uninstalls.

Everything here is slack-sdk's and Bolt's: ``AsyncOAuthFlow`` serves ``GET /slack/install`` and
``GET /slack/oauth_redirect``, slack-sdk's ``AsyncSQLAlchemyInstallationStore`` keeps one bot token per
installation (a workspace, or a whole Enterprise Grid org for an org-wide install) and its
``AsyncTokenRotator`` refreshes tokens that expire (``token_rotation_enabled``). keybot adds:

- the installer of a workspace (or Grid org) that has no keybot organization yet becomes the first
  owner of the new one (``on_installed``); a reinstall changes no role;
- an org-wide Grid install is one keybot organization keyed by the enterprise id (``org_key``): the
  request's enterprise id stands for its team id, so roles hold in every workspace of the org;
- ``InstalledTokens``: the bot token of the workspace a DM or an update concerns, rotated when it is
  about to expire (or Slack said it had), for the outbox worker;
- ``app_uninstalled`` and ``tokens_revoked`` delete the installation's tokens at once; DMs for it stay
  queued until a reinstall; the organization, its keys and roles stay.

With ``SLACK_BOT_TOKEN`` alone (one workspace) none of this runs: ``SingleToken`` is the token source.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions, AsyncFailureArgs, AsyncSuccessArgs
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackTokenRotationError
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger("keybot.installs")
ROTATE_MINUTES_BEFORE_EXPIRY = 120  # Bolt's default: a token expiring within 2 h is refreshed first
UNINSTALL_EVENTS = ("app_uninstalled", "tokens_revoked")
NOT_INSTALLED = (
    ":warning: keybot is not installed in this workspace any more, so it cannot act here. Ask a workspace "
    "admin to install it again: your organization's keys and roles were kept."
)


def org_key(*, team_id: str | None, enterprise_id: str | None, is_enterprise_install: bool) -> str | None:
    """The id keybot keys an organization by: the enterprise id for an org-wide Enterprise Grid install,
    else the workspace's team id."""
    if is_enterprise_install and enterprise_id:
        return enterprise_id
    return team_id


def context_org_key(context: AsyncBoltContext) -> str | None:
    """``org_key`` of a request, as Bolt read it."""
    team_id, enterprise_id = context.team_id, context.enterprise_id
    return org_key(
        team_id=team_id if isinstance(team_id, str) else None,
        enterprise_id=enterprise_id if isinstance(enterprise_id, str) else None,
        is_enterprise_install=context.is_enterprise_install is True,
    )


class WorkspaceTokens(Protocol):
    """The bot token of the workspace (or Grid org) a Web API call concerns."""

    async def token_for(self, *, team_id: str | None, enterprise_id: str | None) -> str | None:
        """The token to call Slack with; None when keybot is not installed there (now)."""

    async def refreshed(self, *, team_id: str | None, enterprise_id: str | None) -> str | None:
        """A new token after Slack said the current one expired; None if it cannot be refreshed."""


@dataclass(frozen=True)
class SingleToken:
    """One workspace: ``SLACK_BOT_TOKEN`` for every call."""

    token: str

    def __repr__(self) -> str:
        return "SingleToken(***)"

    async def token_for(self, *, team_id: str | None, enterprise_id: str | None) -> str | None:
        return self.token

    async def refreshed(self, *, team_id: str | None, enterprise_id: str | None) -> str | None:
        return None


def _lookup(team_id: str | None, enterprise_id: str | None) -> dict[str, Any]:
    """How the installation store finds the installation of an organization key: an ``E…`` key is an
    org-wide Grid install (found by its enterprise id alone), a ``T…`` key a workspace."""
    if team_id is not None and team_id.startswith("E"):
        return {"enterprise_id": team_id, "team_id": None, "is_enterprise_install": True}
    return {"enterprise_id": enterprise_id, "team_id": team_id, "is_enterprise_install": False}


class InstalledTokens:
    """Tokens from slack-sdk's installation store, rotated through slack-sdk's ``AsyncTokenRotator``."""

    def __init__(self, store: AsyncInstallationStore, *, rotator: AsyncTokenRotator) -> None:
        self._store = store
        self._rotator = rotator

    def __repr__(self) -> str:
        return "InstalledTokens()"

    async def token_for(self, *, team_id: str | None, enterprise_id: str | None) -> str | None:
        return await self._token(team_id, enterprise_id, minutes=ROTATE_MINUTES_BEFORE_EXPIRY)

    async def refreshed(self, *, team_id: str | None, enterprise_id: str | None) -> str | None:
        # Slack said the token expired: rotate whatever its recorded expiry says
        return await self._token(team_id, enterprise_id, minutes=24 * 60 * 365, must_rotate=True)

    async def _token(
        self, team_id: str | None, enterprise_id: str | None, *, minutes: int, must_rotate: bool = False
    ) -> str | None:
        bot = await self._store.async_find_bot(**_lookup(team_id, enterprise_id))
        if bot is None or not bot.bot_token:
            return None
        if bot.bot_refresh_token is None:
            return None if must_rotate else bot.bot_token
        try:
            rotated = await self._rotator.perform_bot_token_rotation(bot=bot, minutes_before_expiration=minutes)
        except SlackTokenRotationError as err:
            data = getattr(err.api_error.response, "data", None)
            error = str(data.get("error", "")) if isinstance(data, dict) else "no answer"
            log.warning("could not refresh the bot token of %s: Slack answered %s", team_id, error[:100])
            return None
        if rotated is None:
            return bot.bot_token
        await self._store.async_save_bot(rotated)
        log.info("refreshed the bot token of %s", team_id)
        return rotated.bot_token


OnInstalled = Callable[[str, str, str], Awaitable[None]]  # (org key, installer, org name)


@dataclass(frozen=True)
class OAuthParts:
    """What a Bolt app installed through OAuth is built from (``bot/runtime/wiring.py`` makes it)."""

    client_id: str
    client_secret: str = ""
    scopes: tuple[str, ...] = ()
    installations: AsyncInstallationStore | None = None
    states: AsyncOAuthStateStore | None = None
    on_installed: OnInstalled | None = None

    def __repr__(self) -> str:
        return f"OAuthParts(client_id={self.client_id!r})"


def oauth_flow(parts: OAuthParts, *, client: AsyncWebClient, logger: logging.Logger) -> AsyncOAuthFlow:
    """Bolt's OAuth flow with slack-sdk's stores; after an installation is stored, ``on_installed``."""

    async def success(args: AsyncSuccessArgs) -> BoltResponse:
        installation: Installation = args.installation
        key = org_key(
            team_id=installation.team_id,
            enterprise_id=installation.enterprise_id,
            is_enterprise_install=bool(installation.is_enterprise_install),
        )
        if key and parts.on_installed is not None:
            name = (installation.enterprise_name if key == installation.enterprise_id else None) or installation.team_name
            await parts.on_installed(key, installation.user_id, (name or key)[:64])
        log.info("keybot installed in %s", key)
        return await args.default.success(args)

    async def failure(args: AsyncFailureArgs) -> BoltResponse:
        log.info("refused an OAuth callback: %s", args.reason)
        return await args.default.failure(args)

    settings = AsyncOAuthSettings(
        client_id=parts.client_id,
        client_secret=parts.client_secret,
        scopes=list(parts.scopes),
        installation_store=parts.installations,
        installation_store_bot_only=True,
        state_store=parts.states,
        callback_options=AsyncCallbackOptions(success=success, failure=failure),
        logger=logger,
    )
    return AsyncOAuthFlow(client=client, logger=logger, settings=settings)


def register_uninstalls(app: AsyncApp, *, installations: AsyncInstallationStore) -> None:
    """``app_uninstalled`` and ``tokens_revoked``: the installation's tokens are deleted at once (keybot
    asks for bot scopes only, so a revoked token is the bot's)."""

    async def forget(context: AsyncBoltContext, event: dict[str, Any]) -> None:
        enterprise = context.enterprise_id if isinstance(context.enterprise_id, str) else None
        whole_org = context.is_enterprise_install is True
        team = None if whole_org else context.team_id
        await installations.async_delete_all(enterprise_id=enterprise, team_id=team)
        log.info("deleted the tokens of %s after %s", enterprise if whole_org else team, event.get("type"))

    for name in UNINSTALL_EVENTS:
        app.event(name)(forget)
