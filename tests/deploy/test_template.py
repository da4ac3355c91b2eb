"""The CloudFormation template (deploy/aws/statustracker.yaml) read as data: lint, IAM, settings, commands."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import gunicorn.config
import pytest
from cfnlint.api import ManualArgs, lint

from tests.conftest import ROOT
from tests.deploy.commands import assert_command_starts, shell_commands
from tests.deploy.stack_template import TEMPLATE, load_template, resolve, task_containers

CONSUMER_CALLS = {
    "kinesis:DescribeStreamSummary",
    "kinesis:ListShards",
    "kinesis:GetShardIterator",
    "kinesis:GetRecords",
}
PRODUCER_CALLS = {"kinesis:PutRecord", "kinesis:PutRecords"}
STREAM_ARN = {"Fn::GetAtt": ["Stream", "Arn"]}
KEY = "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture(scope="module")
def template():
    return load_template()


def _statements(template, policy: str, *, key: str) -> list[dict]:
    """The policy's statements with the stream's key parameter set to ``key`` (empty: AWS managed key)."""
    document = template["Resources"][policy]["Properties"]["PolicyDocument"]
    conditions = {"HasStreamKmsKey": bool(key)}
    resolved = resolve(document, template=template, conditions=conditions, parameters={"StreamKmsKeyArn": key})
    return [
        (statement["Effect"], _actions(statement), statement["Resource"], statement.get("Condition"))
        for statement in resolved["Statement"]
    ]


def _actions(statement: dict) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def test_cfn_lint_finds_nothing():
    # Errors, warnings and the informational checks, in two regions (instance classes and engine
    # versions differ between regions).
    matches = lint(
        TEMPLATE.read_text(),
        config=ManualArgs(regions=["us-east-1", "eu-central-1"], include_checks=["I"]),
    )

    assert [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches] == []


def test_the_stream_is_encrypted_with_kms_by_default_with_the_aws_managed_key(template):
    encryption = template["Resources"]["Stream"]["Properties"]["StreamEncryption"]

    default = resolve(encryption, template=template, conditions={"HasStreamKmsKey": False})
    customer = resolve(
        encryption, template=template, conditions={"HasStreamKmsKey": True}, parameters={"StreamKmsKeyArn": KEY}
    )

    assert default == {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}
    assert customer == {"EncryptionType": "KMS", "KeyId": KEY}
    assert template["Conditions"]["HasStreamKmsKey"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "StreamKmsKeyArn"}, ""]}]}


def test_consumers_may_only_read_the_stream_and_producers_only_write_it(template):
    read = ("Allow", CONSUMER_CALLS, STREAM_ARN, None)
    write = ("Allow", PRODUCER_CALLS, STREAM_ARN, None)
    # With a customer managed key: decrypt to read and a data key to write, on that key, only
    # through Kinesis. The AWS managed key needs no IAM permission at all.
    via_kinesis = {"StringEquals": {"kms:ViaService": {"Fn::Sub": "kinesis.${AWS::Region}.amazonaws.com"}}}

    assert _statements(template, "ConsumerPolicy", key="") == [read]
    assert _statements(template, "ProducerPolicy", key="") == [write]
    assert _statements(template, "ConsumerPolicy", key=KEY) == [read, ("Allow", {"kms:Decrypt"}, KEY, via_kinesis)]
    assert _statements(template, "ProducerPolicy", key=KEY) == [
        write,
        ("Allow", {"kms:GenerateDataKey"}, KEY, via_kinesis),
    ]


def test_only_the_consumer_tasks_have_a_role_and_it_holds_only_the_consumer_policy(template):
    resources = template["Resources"]
    with_role = {
        logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::ECS::TaskDefinition" and "TaskRoleArn" in resource["Properties"]
    }
    role = resources["ConsumerTaskRole"]["Properties"]

    assert with_role == {"ConsumerTaskDefinition"}
    assert resources["ConsumerTaskDefinition"]["Properties"]["TaskRoleArn"] == {
        "Fn::GetAtt": ["ConsumerTaskRole", "Arn"]
    }
    assert role["ManagedPolicyArns"] == [{"Ref": "ConsumerPolicy"}]
    assert "Policies" not in role
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}


def _names_settings_reads() -> set[str]:
    source = (ROOT / "statustracker" / "settings.py").read_text()
    return set(re.findall(r'\.(?:str|bool|int|float|list|db|cache_url_config)\(\s*"([A-Z][A-Z0-9_]*)"', source))


def test_every_setting_a_container_gets_is_one_the_project_reads(template):
    read_by_settings = _names_settings_reads()
    # gunicorn reads WEB_CONCURRENCY itself: its default number of workers.
    read_by_gunicorn = {"WEB_CONCURRENCY"} if "WEB_CONCURRENCY" in inspect.getsource(gunicorn.config.Workers) else set()
    given: dict[str, set[str]] = {}
    for logical_id, container in task_containers(template).items():
        given[logical_id] = {item["Name"] for item in container.get("Environment", []) + container.get("Secrets", [])}

    unknown = {logical_id: names - read_by_settings - read_by_gunicorn for logical_id, names in given.items()}

    assert {"DATABASE_URL", "CELERY_BROKER_URL", "KINESIS_STREAM_NAME", "SECRET_KEY"} <= read_by_settings
    assert unknown == {logical_id: set() for logical_id in given}
    common = {"SECRET_KEY", "CELERY_BROKER_URL", "DATABASE_URL", "STATUSTRACKER_VAR_DIR"}
    assert given["ConsumerTaskDefinition"] >= common | {"KINESIS_STREAM_NAME", "AWS_DEFAULT_REGION"}
    assert given["WorkerTaskDefinition"] >= common
    assert given["WebTaskDefinition"] >= common | {"ALLOWED_HOSTS", "SECURE_PROXY_SSL_HEADER", "NUM_PROXIES"}
    # Beat only sends periodic tasks: no database password for it.
    assert given["BeatTaskDefinition"] == {"SECRET_KEY", "CELERY_BROKER_URL", "STATUSTRACKER_VAR_DIR"}


def test_secrets_reach_the_containers_as_ecs_secrets_never_as_plain_environment(template):
    for container in task_containers(template).values():
        environment = {item["Name"] for item in container.get("Environment", [])}
        assert not environment & {"SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "METRICS_TOKEN"}


def test_every_container_command_starts(template):
    for logical_id, container in task_containers(template).items():
        command = resolve(container["Command"], template=template)
        assert all(isinstance(arg, str) for arg in command), (logical_id, command)
        assert_command_starts(command)


def test_the_web_command_adds_the_tasks_own_address_to_allowed_hosts(template, tmp_path):
    """The load balancer's health checks send the task's IP address as Host; Django must accept it."""
    metadata = {"Name": "web", "Networks": [{"NetworkMode": "awsvpc", "IPv4Addresses": ["10.0.2.106"]}]}

    class TaskMetadata(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(metadata).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), TaskMetadata)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    script = task_containers(template)["WebTaskDefinition"]["Command"][2]
    # The script up to the start of the web server, then what it left in the environment.
    setup = script.split("&& python manage.py collectstatic")[0]
    try:
        result = subprocess.run(
            ["sh", "-c", f"{setup} && printenv ALLOWED_HOSTS"],
            env={
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                "ALLOWED_HOSTS": "status.example.com",
                "ECS_CONTAINER_METADATA_URI_V4": f"http://127.0.0.1:{server.server_address[1]}/v4/abc",
            },
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        server.shutdown()
        server.server_close()

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "status.example.com,10.0.2.106"
    assert [command[:3] for command in shell_commands(script)] == [
        ["python", "manage.py", "collectstatic"],
        ["gunicorn", "statustracker.wsgi", "--bind"],
    ]


def test_exactly_one_beat_even_while_deploying(template):
    resources = template["Resources"]
    beat = resources["BeatService"]["Properties"]
    scaled = {
        resource["Properties"]["ResourceId"]["Fn::Sub"]
        for resource in resources.values()
        if resource["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"
    }

    assert beat["DesiredCount"] == 1
    assert beat["DeploymentConfiguration"] == {"MaximumPercent": 100, "MinimumHealthyPercent": 0}
    assert scaled == {
        "service/${Cluster}/${WebService.Name}",
        "service/${Cluster}/${WorkerService.Name}",
        "service/${Cluster}/${ConsumerService.Name}",
    }


def test_consumers_scale_on_the_streams_iterator_age_up_to_one_per_shard(template):
    resources = template["Resources"]
    target = resources["ConsumerScalableTarget"]["Properties"]
    alarms = {
        logical_id: resource["Properties"]
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }
    steps = {}
    for logical_id, alarm in alarms.items():
        (action,) = alarm["AlarmActions"]
        policy = resources[action["Ref"]]["Properties"]
        assert policy["ScalingTargetId"] == {"Ref": "ConsumerScalableTarget"}
        (step,) = policy["StepScalingPolicyConfiguration"]["StepAdjustments"]
        steps[logical_id] = (alarm["ComparisonOperator"], step["ScalingAdjustment"])
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
            "AWS/Kinesis",
            "GetRecords.IteratorAgeMilliseconds",
            "Maximum",
        )
        assert alarm["Dimensions"] == [{"Name": "StreamName", "Value": {"Ref": "Stream"}}]

    assert target["ResourceId"] == {"Fn::Sub": "service/${Cluster}/${ConsumerService.Name}"}
    assert (target["MinCapacity"], target["MaxCapacity"]) == ({"Ref": "ConsumerMinCount"}, {"Ref": "ShardCount"})
    assert steps == {
        "ConsumerBehindAlarm": ("GreaterThanThreshold", 1),
        "ConsumerCaughtUpAlarm": ("LessThanThreshold", -1),
    }
    assert alarms["ConsumerBehindAlarm"]["Threshold"] == {"Ref": "ConsumerScaleOutIteratorAgeMs"}
