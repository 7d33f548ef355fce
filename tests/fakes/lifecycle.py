"""``MemoryLifecycleRows``: the key lifecycle's rows (``bot.ports.LifecycleRows``) over a ``State``;
``MemoryTransaction`` inherits it."""

from datetime import datetime
from typing import TYPE_CHECKING

from bot.domain.lifecycle import Policy
from tests.fakes.state import KeyRow, RetiredRow, State

if TYPE_CHECKING:
    from bot.ports import LifecycleRows


class MemoryLifecycleRows:
    _s: State

    def _hit(self, method: str, *, write: bool = False) -> None:
        raise NotImplementedError  # MemoryTransaction's

    def _changed(self, row_id: int, *, at: datetime, by: str) -> KeyRow | None:
        row = self._s.keys.get(row_id)
        if row is not None:
            row.changed_at, row.changed_by = at, by
        return row

    async def org_policy(self, org_id: int) -> Policy:
        self._hit("org_policy")
        return self._s.policies.get(org_id, Policy())

    async def set_org_policy(self, org_id: int, policy: Policy) -> None:
        self._hit("set_org_policy", write=True)
        if org_id in self._s.orgs:
            self._s.policies[org_id] = policy

    async def set_key_expiry(self, row_id: int, *, expires_at: datetime | None, at: datetime, by: str) -> None:
        self._hit("set_key_expiry", write=True)
        row = self._changed(row_id, at=at, by=by)
        if row is not None:
            row.expires_at = expires_at

    async def set_key_disabled(self, row_id: int, *, disabled: bool, at: datetime, by: str) -> None:
        self._hit("set_key_disabled", write=True)
        row = self._changed(row_id, at=at, by=by)
        if row is not None:
            row.disabled_at = at if disabled else None

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
        self._hit("roll_key", write=True)
        row = self._s.keys.get(row_id)
        if row is None:
            return
        if row.key_id in self._s.retired or any(r.key_id == key_id for r in self._s.keys.values()):
            raise AssertionError("key ids are unique")  # the database's primary and unique keys
        for retired in self._s.retired.values():  # no old secret outlives this roll's grace
            if retired.key_row_id == row_id and retired.retiring_at > retiring_at:
                retired.retiring_at = retiring_at
        self._s.retired[row.key_id] = RetiredRow(
            key_id=row.key_id,
            key_row_id=row.id,
            secret_hash=row.secret_hash,
            masked=row.masked,
            retiring_at=retiring_at,
            rolled_at=at,
        )
        row.key_id, row.masked, row.secret_hash = key_id, masked, secret_hash
        row.retiring_at = retiring_at  # the latest end of a grace: none runs past this roll's
        self._changed(row_id, at=at, by=by)


if TYPE_CHECKING:

    def _implements_port(rows: MemoryLifecycleRows) -> "LifecycleRows":
        return rows
