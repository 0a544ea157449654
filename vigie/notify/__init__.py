"""Agency emails: digests, urgent alerts, escalation, contact health, delivery.

Reads the store, never the scanner. Every message goes through the outbox
(``OutboxMessage``): written before it is sent, marked sent only once the SMTP
server accepted it, so nothing is lost and nothing is sent twice.

- :func:`run_notify` queues the digests and escalations that are due, then
  delivers the outbox (``vigie notify``); ``dry_run=True`` changes nothing
  and returns the drafts;
- :func:`urgent_alert_hook` is the sweep's per-host hook for urgent alerts;
- :func:`deliver_outbox` sends what is queued (with back-off for failures);
- :func:`outbox_entries` lists the outbox (``vigie notify --status``);
- :func:`export_eml` writes a message as an ``.eml`` file.
"""

from vigie.notify._alerts import queue_urgent_alerts, urgent_alert_hook
from vigie.notify._delivery import DeliveryReport, backoff, deliver_outbox
from vigie.notify._digest import (
    NotifyLocked,
    NotifyReport,
    QueuedMessage,
    plan_digests,
    plan_overdue_escalations,
    run_notify,
)
from vigie.notify._outbox import (
    FAILED,
    OUTBOX_COLUMNS,
    QUEUED,
    SENDING,
    SENT,
    Addressing,
    Draft,
    Kind,
    OutboxEntry,
    email_for_draft,
    email_for_row,
    export_eml,
    outbox_entries,
)
from vigie.notify._smtp import MessageRefused, ServerUnavailable

__all__ = [
    "FAILED",
    "OUTBOX_COLUMNS",
    "QUEUED",
    "SENDING",
    "SENT",
    "Addressing",
    "DeliveryReport",
    "Draft",
    "Kind",
    "MessageRefused",
    "NotifyLocked",
    "NotifyReport",
    "OutboxEntry",
    "QueuedMessage",
    "ServerUnavailable",
    "backoff",
    "deliver_outbox",
    "email_for_draft",
    "email_for_row",
    "export_eml",
    "outbox_entries",
    "plan_digests",
    "plan_overdue_escalations",
    "queue_urgent_alerts",
    "run_notify",
    "urgent_alert_hook",
]
