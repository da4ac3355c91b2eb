"""Admin for operators, one module per page family: instances with their history, the inbox, dead
letters, shard leases, and the registry's pages with what only this app can read (definitions)."""

from tracking.admin import (  # noqa: F401 (registers them)
    customer_emails,
    dead_letters,
    definitions,
    inbox,
    instances,
    leases,
    webhooks,
)
