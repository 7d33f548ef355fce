"""``WorkspaceDirectory`` on Slack's Web API: the workspace's admins, from ``users.list`` (paged with
slack-sdk's cursor iterator; Tier 2, asked only when an org has lost its last owner)."""

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.installs import WorkspaceTokens

PAGE = 200  # users per users.list page


class SlackDirectory:
    def __init__(self, client: AsyncWebClient, *, tokens: WorkspaceTokens | None = None) -> None:
        self._client = client
        self._tokens = tokens  # keybot installed through OAuth: each workspace's own token

    async def admins(self, team_id: str, *, workspace: str | None = None) -> list[str]:
        """Active human admins and owners of the workspace (``is_admin`` or ``is_owner``). An org-wide
        Grid install's token is an org token, with which ``users.list`` needs a workspace's team id:
        ``workspace``, the one the event came from, rather than the enterprise id."""
        found: list[str] = []
        token: dict[str, Any] = {}
        if self._tokens is not None:
            installed = await self._tokens.token_for(team_id=team_id, enterprise_id=None)
            if installed is None:
                return found  # keybot is not installed there (now): nobody to ask
            token = {"token": installed}
        listed = workspace if team_id.startswith("E") and workspace else team_id
        async for page in await self._client.users_list(team_id=listed, limit=PAGE, **token):
            members = page.get("members")
            for member in members if isinstance(members, list) else []:
                if not isinstance(member, dict) or not isinstance(member.get("id"), str):
                    continue
                if member.get("deleted") or member.get("is_bot") or member.get("id") == "USLACKBOT":
                    continue
                if member.get("is_admin") or member.get("is_owner"):
                    found.append(member["id"])
        return found
