"""1. Arrival: events come in over the REST API, a file or Kinesis; each is parsed against the
envelope and either stored in the inbox (``ingest.events_ingest``) or dead-lettered."""
