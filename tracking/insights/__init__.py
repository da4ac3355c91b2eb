"""Where processes get stuck: a model's dashboard (figures, page) and its history as an event log.

- ``figures.py``   what the figures are, and how they are worked out from history rows (pure)
- ``selectors.py`` the figures from the database: one set-based statement on PostgreSQL, the pure
                   fallback on SQLite; and what the background recompute stored
- ``services.py``  working out one scope's figures and storing them in the shared cache
- ``tasks.py``     the beat task that queues every standard scope, and the task that computes one
- ``paths.py``     the directly-follows graph as a diagram (drawn like the model's diagram)
- ``event_log.py`` instances' histories as an event log: XES, OCEL 2.0 JSON, CSV
- ``views.py``     the staff page (stored figures only) and its event-log download; ``apis.py`` the API's download
"""
