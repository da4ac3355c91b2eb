"""The consumer process's own Prometheus counters (``consume_kinesis --metrics-port`` serves them)."""

from prometheus_client import Counter, Gauge, Histogram

RECORDS = Counter(
    "statustracker_kinesis_records", "User records stored in the inbox or dead-lettered.", ["stream", "shard"]
)
REJECTED = Counter("statustracker_kinesis_rejected_records", "User records kept as dead letters.", ["stream", "shard"])
RETRIES = Counter(
    "statustracker_kinesis_retries",
    "Kinesis calls retried, by cause (throttled, server_error, connection, expired_iterator).",
    ["stream", "cause"],
)
LEASE_CHANGES = Counter(
    "statustracker_kinesis_lease_changes",
    "Leases taken, adopted, lost, handed over, released and finished by this worker.",
    ["stream", "change"],
)
LEASES_HELD = Gauge("statustracker_kinesis_leases_held", "Leases this worker holds.", ["stream"])
MILLIS_BEHIND = Gauge(
    "statustracker_kinesis_millis_behind_latest", "MillisBehindLatest of the last read.", ["stream", "shard"]
)
BATCH_SECONDS = Histogram(
    "statustracker_kinesis_batch_store_seconds",
    "Time to store one batch and its checkpoint.",
    ["stream"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
