"""``kinesis_stream`` and ``publish_events`` against kinesalite; the server listens on loopback only."""

import json
from collections import defaultdict
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.tracking.arrival.kinesis.conftest import FaultPlan, order_events, read_stream

pytestmark = pytest.mark.integration


def test_kinesalite_listens_on_loopback_only(kinesalite):
    port = f"{kinesalite.port:04X}"
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and local.endswith(f":{port}"):  # 0A: LISTEN
                    listening.append(local.split(":")[0])
    assert listening == ["0100007F"]  # 127.0.0.1, and nothing else


def test_kinesis_stream_create_describe_delete(kinesalite, local_aws_env):
    endpoint = f"--endpoint-url={kinesalite.endpoint_url}"
    out = StringIO()

    call_command("kinesis_stream", "create", "cmd-stream", "--shards=3", endpoint, stdout=out)
    call_command("kinesis_stream", "describe", "cmd-stream", "--json", endpoint, stdout=out)
    description = json.loads(out.getvalue().split("\n", 1)[1])
    with pytest.raises(CommandError, match="already exists"):
        call_command("kinesis_stream", "create", "cmd-stream", endpoint)
    call_command("kinesis_stream", "delete", "cmd-stream", endpoint, stdout=out)

    assert description["status"] == "ACTIVE"
    assert [s["id"] for s in description["shards"]] == [f"shardId-00000000000{i}" for i in range(3)]
    assert "stream cmd-stream deleted" in out.getvalue()
    with pytest.raises(CommandError, match="does not exist"):
        call_command("kinesis_stream", "describe", "cmd-stream", endpoint)


def test_publish_events_retries_refused_records_and_keeps_each_transactions_order(
    kinesis, new_stream, fault_proxy, tmp_path, local_aws_env
):
    # Given a proxy that refuses part of many PutRecords requests, and a file with two bad lines
    stream = new_stream(shards=2)
    proxy = fault_proxy(FaultPlan(rates={"PutRecords": {"partial": 0.3, "throttle": 0.05, "reset": 0.05}}))
    envelopes = list({e["event_id"]: e for e in order_events(count=1500, seed=9, in_flight=60)}.values())
    lines = [json.dumps(e) for e in envelopes]
    lines[10:10] = ["not json", json.dumps({"event_id": "no-transaction", "model_id": "m"})]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out, err = StringIO(), StringIO()

    # When the file is published through it
    call_command(
        "publish_events", str(path), f"--stream={stream}", f"--endpoint-url={proxy.endpoint_url}",
        stdout=out, stderr=err,
    )  # fmt: skip

    # Then every event is on the stream once, each transaction's events in file order
    assert proxy.injected["PutRecords:partial"] > 0
    assert f"{len(envelopes)} published" in out.getvalue()
    assert "2 skipped" in out.getvalue()
    assert f"{path}:11: skipped" in err.getvalue()
    assert f"{path}:12: skipped" in err.getvalue()
    on_stream: dict[str, list[str]] = defaultdict(list)
    for records in read_stream(kinesis, stream).values():
        for record in records:
            envelope = json.loads(record["Data"])
            assert record["PartitionKey"] == envelope["transaction_id"]
            on_stream[envelope["transaction_id"]].append(envelope["event_id"])
    in_file: dict[str, list[str]] = defaultdict(list)
    for envelope in envelopes:
        in_file[envelope["transaction_id"]].append(envelope["event_id"])
    assert on_stream == in_file
