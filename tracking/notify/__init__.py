"""4. Telling people: what an applied change means to subscribers, the outbox the apply writes in
the same transaction, and its delivery (webhooks, customer email, alerts)."""
