"""``SqlLifecycleRows``: the key lifecycle's part of ``bot.ports.Transaction`` (``LifecycleRows``): an
org's key policy, a key's expiry and disabled state, and rolling a key (its old secret moves to
``retired_secrets``). ``SqlTransaction`` inherits it."""

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain.lifecycle import DEFAULT_STALE_AFTER, LeakAction, Policy
from storage.errors import translating
from storage.tables import UTCDateTime, api_keys, orgs, retired_secrets

if TYPE_CHECKING:
    from bot.ports import LifecycleRows


def _seconds(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds())


def _duration(seconds: int | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


class SqlLifecycleRows:
    """Lifecycle rows on one transaction's connection."""

    _conn: AsyncConnection

    @translating
    async def org_policy(self, org_id: int) -> Policy:
        o = orgs.c
        stmt = select(o.max_lifetime_s, o.default_lifetime_s, o.stale_after_s, o.leak_action, o.requests).where(
            o.id == org_id
        )
        row = (await self._conn.execute(stmt)).first()
        if row is None:
            return Policy()
        max_s, default_s, stale_s, leak, requests = row
        return Policy(
            max_lifetime=_duration(max_s),
            default_lifetime=_duration(default_s),
            stale_after=_duration(stale_s) or DEFAULT_STALE_AFTER,
            leak_action=LeakAction(leak) if leak else LeakAction.DISABLE,
            requests=requests != "off",
        )

    @translating
    async def set_org_policy(self, org_id: int, policy: Policy) -> None:
        await self._conn.execute(
            update(orgs)
            .where(orgs.c.id == org_id)
            .values(
                max_lifetime_s=_seconds(policy.max_lifetime),
                default_lifetime_s=_seconds(policy.default_lifetime),
                stale_after_s=_seconds(policy.stale_after),
                leak_action=policy.leak_action.value,
                requests="on" if policy.requests else "off",
            )
        )

    @translating
    async def set_key_expiry(
        self, row_id: int, *, expires_at: datetime | None, at: datetime, by: str
    ) -> None:
        await self._conn.execute(
            update(api_keys)
            .where(api_keys.c.id == row_id)
            .values(expires_at=expires_at, changed_at=at, changed_by=by)
        )

    @translating
    async def set_key_disabled(self, row_id: int, *, disabled: bool, at: datetime, by: str) -> None:
        await self._conn.execute(
            update(api_keys)
            .where(api_keys.c.id == row_id)
            .values(disabled_at=at if disabled else None, changed_at=at, changed_by=by)
        )

    @translating
    async def roll_key(
        self,
        row_id: int,
        *,
        key_id: str,
        masked: str,
        secret_hash: str,
        retiring_at: datetime,
        at: datetime,
        by: str,
    ) -> None:
        k = api_keys.c
        old = select(
            k.key_id,
            k.id,
            k.secret_hash,
            k.masked,
            literal(retiring_at, UTCDateTime),
            literal(at, UTCDateTime),
        ).where(k.id == row_id)
        columns = ["key_id", "key_row_id", "secret_hash", "masked", "retiring_at", "rolled_at"]
        r = retired_secrets.c
        # a roll with no grace during an earlier one's ends that one too: no old secret outlives this roll's
        await self._conn.execute(
            update(retired_secrets)
            .where(r.key_row_id == row_id, r.retiring_at > retiring_at)
            .values(retiring_at=retiring_at)
        )
        await self._conn.execute(insert(retired_secrets).from_select(columns, old))
        await self._conn.execute(
            update(api_keys)
            .where(k.id == row_id)
            .values(key_id=key_id, masked=masked, secret_hash=secret_hash, changed_at=at, changed_by=by)
        )


if TYPE_CHECKING:  # mypy proves that SqlLifecycleRows implements the port

    def _implements_port(rows: SqlLifecycleRows) -> "LifecycleRows":
        return rows
