"""The one composition root: ``wiring`` builds every concrete part of a running keybot and wires
them; ``commands`` runs what the CLI asks for. Only this package imports storage."""

from bot.runtime.commands import (
    audit_export,
    bootstrap,
    db_upgrade,
    loopback_only,
    outbox_list,
    outbox_retry,
    serve,
)
from bot.runtime.wiring import (
    QUIET_LOGGERS,
    Runtime,
    StartupError,
    build_runtime,
    connect,
    existing_org_teams,
    freeze_startup_objects,
    keep_secrets_out_of_logs,
    redacted,
    retention_policy,
    return_big_allocations_to_the_os,
    services_for,
    utcnow,
)

__all__ = [
    "QUIET_LOGGERS",
    "Runtime",
    "StartupError",
    "audit_export",
    "bootstrap",
    "build_runtime",
    "connect",
    "db_upgrade",
    "existing_org_teams",
    "freeze_startup_objects",
    "keep_secrets_out_of_logs",
    "loopback_only",
    "outbox_list",
    "outbox_retry",
    "redacted",
    "retention_policy",
    "return_big_allocations_to_the_os",
    "serve",
    "services_for",
    "utcnow",
]
