"""Status model definitions: drafts, published versions, validation, import/export and handlers.

It knows nothing of instances or events (the ``tracking`` app)."""
