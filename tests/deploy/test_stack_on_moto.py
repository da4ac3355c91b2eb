"""The deployment walk-through against moto's server on 127.0.0.1: create the stack, look at what it
made, put a sample event on its stream, read it into the inbox with the consumer exactly as the
template runs it, and delete the stack.

What moto 5.2.5 does with the template (docs/deploy.md, "Trying the template without AWS"):

- it creates the Kinesis stream, the IAM roles and managed policies, the security groups, the load
  balancer, its target group and listener, the ECS cluster, task definitions and services, the log
  group, and the RDS instance with its subnet group;
- some only in part: the stream without its encryption, the consumer role without its managed
  policy attached, task definitions without their roles, services without their load balancer and
  network settings; and on deletion it keeps the managed policies and the services.
  test_template.py checks those parts in the template itself;
- it skips, with a warning, the Secrets Manager secrets, the Application Auto Scaling targets and
  policies and the CloudWatch alarms (SKIPPED_BY_MOTO): the stack completes without them;
- it cannot deploy ElastiCache: the stack would fail on the Redis endpoint it refers to. So these
  tests name an existing broker (BrokerUrlSecretArn), which switches Redis off.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.conftest import EXAMPLES, ROOT, _database_url, load_example_model, wait_for
from tests.deploy.stack_template import TEMPLATE, load_template
from tests.tracking.arrival.kinesis.conftest import FaultPlan, FaultProxy
from tracking.arrival.kinesis.emulator import LOCAL_CREDENTIALS, local_client
from tracking.arrival.kinesis.producer import records_publish
from tracking.models import InboxEvent, SourceKind

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"  # moto's account
REGION = LOCAL_CREDENTIALS["region_name"]
BROKER_URL_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:statustracker/broker-url-AbCdEf"
DATABASE_URL_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:statustracker/database-url-AbCdEf"
SKIPPED_BY_MOTO = {
    "AWS::SecretsManager::Secret",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::CloudWatch::Alarm",
}
CONSUMER_CALLS = {"DescribeStreamSummary", "ListShards", "GetShardIterator", "GetRecords"}


@pytest.fixture(scope="module")
def network(moto_server):
    """A VPC with two private and two public subnets in moto, as an operator would have."""
    ec2 = moto_server.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")["Subnet"][
            "SubnetId"
        ]
        for i, zone in enumerate("abab")
    ]
    return {"VpcId": vpc, "PrivateSubnetIds": ",".join(subnets[:2]), "PublicSubnetIds": ",".join(subnets[2:])}


def _create_stack(moto_server, network, name: str, **parameters: str) -> dict:
    cloudformation = moto_server.client("cloudformation")
    values = {
        "Image": "registry.example/statustracker:1.0",
        "DomainName": "status.example.com",
        **network,
        **parameters,
    }
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in values.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    cloudformation.get_waiter("stack_create_complete").wait(
        StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    return cloudformation.describe_stacks(StackName=name)["Stacks"][0]


def _outputs(stack: dict) -> dict[str, str]:
    return {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}


def _physical_ids(moto_server, stack_name: str) -> dict[str, str]:
    summaries = moto_server.client("cloudformation").list_stack_resources(StackName=stack_name)[
        "StackResourceSummaries"
    ]
    # moto lists the resources it did not make (skipped or switched off) without a logical id.
    return {s["LogicalResourceId"]: s.get("PhysicalResourceId", "") for s in summaries if s["LogicalResourceId"]}


def _policy_document(iam, arn: str) -> dict:
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]


def _container(ecs, task_definition_arn: str) -> dict:
    (container,) = ecs.describe_task_definition(taskDefinition=task_definition_arn)["taskDefinition"][
        "containerDefinitions"
    ]
    return container


@pytest.fixture
def recording_proxy(moto_server):
    """An HTTP proxy to moto that counts the Kinesis operations sent through it."""
    proxies: list[FaultProxy] = []

    def start() -> FaultProxy:
        proxy = FaultProxy(int(moto_server.endpoint_url.rsplit(":", 1)[1]), FaultPlan()).start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


def _start_consumer_as_deployed(container: dict, *, endpoint_url: str, log_path: Path) -> subprocess.Popen:
    """The consumer task's command with its environment, here: the stream's endpoint is the proxy,
    the database the test database, the secrets those of this test run."""
    assert container["command"][0] == "python"
    environment = {item["name"]: item["value"] for item in container["environment"]}
    # The task's volume path does not exist here; the test run's var directory stands in.
    environment.pop("STATUSTRACKER_VAR_DIR")
    env = {
        **os.environ,
        **environment,
        "DATABASE_URL": _database_url(),
        "KINESIS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, *container["command"][1:]], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )


def test_create_the_stack_send_an_event_read_it_into_the_inbox_and_delete_the_stack(
    moto_server, network, recording_proxy, transactional_db, tmp_path
):
    # Given the stack, with its own PostgreSQL and an existing broker
    stack = _create_stack(
        moto_server,
        network,
        "walkthrough",
        ShardCount="2",
        BrokerUrlSecretArn=BROKER_URL_SECRET,
        DatabaseDeletionProtection="false",
    )
    outputs = _outputs(stack)
    resources = _physical_ids(moto_server, "walkthrough")
    kinesis, iam, ecs = (moto_server.client(name) for name in ("kinesis", "iam", "ecs"))

    # Then it is complete, with everything moto makes
    template = load_template()
    active = {
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource.get("Condition") not in ("CreateRedis", "HasCertificate", "HasStreamKmsKey")
    }
    not_made = {template["Resources"][logical_id]["Type"] for logical_id in active - set(resources)}
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert not_made == SKIPPED_BY_MOTO
    assert set(resources) <= active

    # and its stream: two shards, the name and ARN in the outputs
    summary = kinesis.describe_stream_summary(StreamName=outputs["StreamName"])["StreamDescriptionSummary"]
    assert outputs["StreamName"] == "walkthrough-events"
    assert (summary["StreamStatus"], summary["OpenShardCount"]) == ("ACTIVE", 2)
    assert summary["StreamARN"] == outputs["StreamArn"]

    # and the policies: the consumer's reads the stream, the producers' writes it. (moto does not
    # attach a role's ManagedPolicyArns; test_template.py checks that the consumer tasks' role
    # holds the consumer policy and nothing else.)
    consumer_policy = _policy_document(iam, outputs["ConsumerPolicyArn"])
    producer_policy = _policy_document(iam, outputs["ProducerPolicyArn"])
    assert [(set(s["Action"]), s["Resource"]) for s in consumer_policy["Statement"]] == [
        ({f"kinesis:{call}" for call in CONSUMER_CALLS}, outputs["StreamArn"])
    ]
    assert [(set(s["Action"]), s["Resource"]) for s in producer_policy["Statement"]] == [
        ({"kinesis:PutRecord", "kinesis:PutRecords"}, outputs["StreamArn"])
    ]
    assert iam.list_role_policies(RoleName=resources["ConsumerTaskRole"])["PolicyNames"] == []

    # and the services: one beat, the consumers at their minimum
    services = ecs.describe_services(
        cluster=outputs["ClusterName"],
        services=[outputs[f"{name}ServiceName"] for name in ("Web", "Worker", "Beat", "Consumer")],
    )["services"]
    assert [(s["serviceName"], s["desiredCount"]) for s in services] == [
        (outputs["WebServiceName"], 2),
        (outputs["WorkerServiceName"], 2),
        (outputs["BeatServiceName"], 1),
        (outputs["ConsumerServiceName"], 1),
    ]
    database = moto_server.client("rds").describe_db_instances()["DBInstances"]
    assert [(d["Engine"], d["DBName"], d["StorageEncrypted"], d["PubliclyAccessible"]) for d in database] == [
        ("postgres", "statustracker", True, False)
    ]

    # When a producer puts the example's first event on the stream with the project's producer
    load_example_model()
    first_event = (EXAMPLES / "order-fulfilment-events.jsonl").read_bytes().splitlines()[0]
    producer_proxy = recording_proxy()
    report = records_publish(
        client=local_client(producer_proxy.endpoint_url), stream=outputs["StreamName"], lines=[(1, first_event)]
    )
    # and the consumer runs as its task definition says, until the event is in the inbox
    consumer_proxy = recording_proxy()
    container = _container(ecs, resources["ConsumerTaskDefinition"])
    consumer = _start_consumer_as_deployed(
        container, endpoint_url=consumer_proxy.endpoint_url, log_path=tmp_path / "consumer.log"
    )
    try:
        wait_for(
            lambda: InboxEvent.objects.filter(event_id=json.loads(first_event)["event_id"]).exists(),
            timeout=60,
            message=f"the event in the inbox (consumer log: {tmp_path / 'consumer.log'})",
        )
        consumer.send_signal(signal.SIGTERM)
        exit_status = consumer.wait(timeout=30)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()

    # Then the event was stored from the stack's stream, and each side made only the calls its
    # policy allows
    event = InboxEvent.objects.get(event_id=json.loads(first_event)["event_id"])
    started = [
        json.loads(line)
        for line in (tmp_path / "consumer.log").read_text().splitlines()
        if line.startswith("{") and '"started"' in line
    ]
    assert report.published == 1
    assert (event.instance.transaction_id, event.event_type, event.source_kind) == (
        "ORD-1001",
        "order.placed",
        SourceKind.KINESIS,
    )
    assert event.source_ref.startswith(f"{outputs['StreamName']}/shardId-")
    assert exit_status == 0
    assert [entry.get("stream") for entry in started] == [outputs["StreamName"]]
    assert set(producer_proxy.calls) <= {"PutRecord", "PutRecords"}
    assert producer_proxy.calls["PutRecords"] == 1
    assert set(consumer_proxy.calls) <= CONSUMER_CALLS
    assert consumer_proxy.calls["GetRecords"] >= 1

    # When the stack is deleted
    cloudformation = moto_server.client("cloudformation")
    cloudformation.delete_stack(StackName="walkthrough")
    cloudformation.get_waiter("stack_delete_complete").wait(
        StackName="walkthrough", WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )

    # Then the stack and its stream and roles are gone (moto keeps the managed policies and the
    # ECS services, which CloudFormation deletes)
    statuses = {s["StackName"]: s["StackStatus"] for s in cloudformation.list_stacks()["StackSummaries"]}
    assert statuses["walkthrough"] == "DELETE_COMPLETE"
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        kinesis.describe_stream_summary(StreamName=outputs["StreamName"])
    for role_name in (resources["ConsumerTaskRole"], resources["TaskExecutionRole"]):
        with pytest.raises(ClientError, match="NoSuchEntity"):
            iam.get_role(RoleName=role_name)


def test_with_an_existing_database_and_broker_the_tasks_read_their_urls_from_the_named_secrets(moto_server, network):
    # Given the stack with the URLs of an existing PostgreSQL and Redis, half way through a release
    stack = _create_stack(
        moto_server,
        network,
        "existing",
        DatabaseUrlSecretArn=DATABASE_URL_SECRET,
        BrokerUrlSecretArn=BROKER_URL_SECRET,
        MigrateImage="registry.example/statustracker:1.1",
    )
    resources = _physical_ids(moto_server, "existing")
    ecs, iam = moto_server.client("ecs"), moto_server.client("iam")

    # Then no database is made, every task takes the URLs from those secrets, and ECS may read them
    secrets = {
        name: {s["name"]: s.get("valueFrom") for s in _container(ecs, resources[name]).get("secrets", [])}
        for name in ("WebTaskDefinition", "WorkerTaskDefinition", "ConsumerTaskDefinition", "MigrateTaskDefinition")
    }
    (execution_policy,) = iam.list_role_policies(RoleName=resources["TaskExecutionRole"])["PolicyNames"]
    document = iam.get_role_policy(RoleName=resources["TaskExecutionRole"], PolicyName=execution_policy)[
        "PolicyDocument"
    ]
    # moto keeps a role's inline policy from a template as the text of a Python dict.
    document = ast.literal_eval(document) if isinstance(document, str) else document
    readable = next(s["Resource"] for s in document["Statement"] if s["Action"] == "secretsmanager:GetSecretValue")

    images = {name: _container(ecs, resources[name])["image"] for name in secrets}
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert images == {
        "WebTaskDefinition": "registry.example/statustracker:1.0",
        "WorkerTaskDefinition": "registry.example/statustracker:1.0",
        "ConsumerTaskDefinition": "registry.example/statustracker:1.0",
        "MigrateTaskDefinition": "registry.example/statustracker:1.1",
    }
    assert "Database" not in resources
    assert "DatabaseEndpoint" not in _outputs(stack)
    assert {name: value["DATABASE_URL"] for name, value in secrets.items()} == dict.fromkeys(
        secrets, DATABASE_URL_SECRET
    )
    assert {name: value["CELERY_BROKER_URL"] for name, value in secrets.items() if name != "MigrateTaskDefinition"} == {
        "WebTaskDefinition": BROKER_URL_SECRET,
        "WorkerTaskDefinition": BROKER_URL_SECRET,
        "ConsumerTaskDefinition": BROKER_URL_SECRET,
    }
    assert readable == [
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:existing/*",
        DATABASE_URL_SECRET,
        BROKER_URL_SECRET,
    ]
