"""The CloudFormation template as data, for tests that read it rather than deploy it.

``resolve`` evaluates what a test needs of the intrinsic functions: ``Fn::If`` with chosen
conditions, and ``Ref`` to a parameter (its default, or a value given). Everything else (``Ref`` to
a resource, ``Fn::GetAtt``, ``Fn::Sub``) stays as written, so that a test can assert what it refers to.
"""

from __future__ import annotations

from pathlib import Path

from cfnlint.decode.decode import decode_str

from tests.conftest import ROOT

TEMPLATE = ROOT / "deploy" / "aws" / "statustracker.yaml"


def load_template(path: Path = TEMPLATE) -> dict:
    template, problems = decode_str(path.read_text())
    assert not problems, problems
    return template


def resolve(node, *, template: dict, conditions: dict[str, bool] | None = None, parameters: dict | None = None):
    conditions = conditions or {}
    parameters = parameters or {}
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            chosen = when_true if conditions[name] else when_false
            return resolve(chosen, template=template, conditions=conditions, parameters=parameters)
        if set(node) == {"Ref"} and node["Ref"] in template["Parameters"]:
            name = node["Ref"]
            return str(parameters.get(name, template["Parameters"][name].get("Default")))
        resolved = {
            key: resolve(value, template=template, conditions=conditions, parameters=parameters)
            for key, value in node.items()
        }
        return {key: value for key, value in resolved.items() if value != {"Ref": "AWS::NoValue"}}
    if isinstance(node, list):
        items = [resolve(item, template=template, conditions=conditions, parameters=parameters) for item in node]
        return [item for item in items if item != {"Ref": "AWS::NoValue"}]
    return node


def task_containers(template: dict) -> dict[str, dict]:
    """Each task definition's container, by the task definition's logical id."""
    containers = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::ECS::TaskDefinition":
            (container,) = resource["Properties"]["ContainerDefinitions"]
            containers[logical_id] = container
    return containers
