"""Kinesis ingestion: shard leases and checkpoints in the database, the consumer, the producer side.

``consumer.KinesisConsumer`` reads a stream into the event inbox; ``leases`` is the lease and
checkpoint protocol on the ``ShardLease`` table; ``client`` wraps boto3 with backoff; ``producer``
and ``streams`` serve ``publish_events`` and ``kinesis_stream``; ``emulator`` runs kinesalite on
loopback for tests and local runs. docs/kinesis.md explains how they fit together.
"""
