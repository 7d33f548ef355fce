"""Use cases of keybot, one module per area. Every call authorizes its actor; every change writes its
audit event and its DM notices in the same transaction as the change itself.

``build_services`` wires them; front ends (bot/slack, the shell) hold the ``Keybot`` it returns.
"""

from dataclasses import dataclass

from bot.domain.hashing import Hasher
from bot.domain.keys import KeyFormat
from bot.ports import KeyListing
from bot.services.audit import AuditService
from bot.services.base import PAGE_SIZE, Context
from bot.services.home import HomeService
from bot.services.jobs import JobService
from bot.services.keys import KeyMaker, KeyService
from bot.services.lifecycle import LifecycleService
from bot.services.nudges import NudgeService
from bot.services.operators import OperatorService
from bot.services.people import PeopleService
from bot.services.projects import DEFAULT_KEY_NAME, ProjectService
from bot.services.requests import RequestService

__all__ = ["DEFAULT_KEY_NAME", "PAGE_SIZE", "Context", "Keybot", "build_services"]


@dataclass(frozen=True)
class Keybot:
    """Every service, by area."""

    keys: KeyService
    lifecycle: LifecycleService
    projects: ProjectService
    people: PeopleService
    audit: AuditService
    operators: OperatorService
    hasher: Hasher
    nudges: NudgeService  # the buttons of reminder DMs
    jobs: JobService  # what scheduled jobs do when they fall due
    home: HomeService
    requests: RequestService  # access requests: ask, approve or deny, reveal once


def build_services(context: Context, *, listing: KeyListing, hasher: Hasher, key_format: KeyFormat) -> Keybot:
    maker = KeyMaker(hasher=hasher, key_format=key_format)
    keys = KeyService(context, maker=maker, listing=listing)
    lifecycle = LifecycleService(context, maker=maker)
    requests = RequestService(context, keys=keys, maker=maker)
    return Keybot(
        keys=keys,
        lifecycle=lifecycle,
        projects=ProjectService(context, maker=maker, keys=keys),
        people=PeopleService(context),
        audit=AuditService(context),
        operators=OperatorService(context),
        hasher=hasher,
        nudges=NudgeService(context, keys=keys, lifecycle=lifecycle, maker=maker),
        jobs=JobService(context),
        home=HomeService(context, listing=listing, requests=requests),
        requests=requests,
    )
