"""Malformed model files: ``parse_model_file`` says where and what, and ``import_models`` says it in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from models_registry.documents import ModelFileSyntaxError, parse_model_file
from models_registry.models import StatusModel
from models_registry.services import dump_documents
from tests.conftest import EXAMPLES, ROOT
from tests.models_registry.test_definition import MINIMAL

BAD_YAML = "id: minimal\nname: Minimal\n  states: []\n"
BAD_JSON = '{"id": "minimal",\n "name": "Minimal" "states": []}\n'


def syntax_error(content: str | bytes, filename: str) -> ModelFileSyntaxError:
    with pytest.raises(ModelFileSyntaxError) as caught:
        parse_model_file(content, filename=filename)
    return caught.value


def test_well_formed_files_give_their_documents():
    yaml_text = dump_documents([MINIMAL, {**MINIMAL, "id": "other"}], fmt="yaml")

    assert parse_model_file(yaml_text, filename="m.yaml") == [MINIMAL, {**MINIMAL, "id": "other"}]
    assert parse_model_file(json.dumps(MINIMAL).encode(), filename="m.json") == [MINIMAL]
    assert parse_model_file(b"\xef\xbb\xbf" + json.dumps([MINIMAL]).encode(), filename="m.json") == [MINIMAL]


@pytest.mark.parametrize(
    ("content", "filename", "line", "column", "message"),
    [
        (BAD_YAML, "m.yaml", 3, 9, "invalid YAML: mapping values are not allowed here"),
        (BAD_JSON, "m.json", 2, 20, "invalid JSON: Expecting ',' delimiter"),
        # The problem is where the parser stopped; the construct left open is named with its line.
        (
            "id: minimal\nstates: [open, closed\nname: Minimal\n",
            "m.yml",
            3,
            5,
            "invalid YAML: expected ',' or ']', but got ':' (while parsing a flow sequence that starts on line 2)",
        ),
        ("id: minimal\nname: 'Minimal\n", "m.yaml", 3, 1, "invalid YAML: found unexpected end of stream "),
        ("id: minimal\nname: \x07\n", "m.yaml", 2, 7, "invalid YAML: unacceptable character #x0007"),
        ("id: !!python/object:os.system x\n", "m.yaml", 1, 5, "invalid YAML: could not determine a constructor"),
        ("\n\n", "m.json", 3, 1, "invalid JSON: Expecting value"),
        ("id: minimal\nname: Caf\xe9\n".encode("latin-1"), "m.yaml", 2, 10, "not UTF-8: invalid continuation byte"),
        # Columns count characters, not bytes.
        ("name: Café\n".encode() + b"\xff", "m.yaml", 2, 1, "not UTF-8: invalid start byte"),
        ("café: ".encode() + b"\xff", "m.yaml", 1, 7, "not UTF-8: invalid start byte"),
    ],
)
def test_a_malformed_file_is_one_error_with_line_column_and_message(content, filename, line, column, message):
    error = syntax_error(content, filename)

    assert (error.filename, error.line, error.column) == (filename, line, column)
    assert error.message.startswith(message)
    assert str(error) == f"{filename}:{line}:{column}: {error.message}"
    assert "\n" not in str(error)
    assert isinstance(error, ValueError), "callers that caught parse_documents' ValueError still catch it"


def test_text_without_a_file_name_is_read_as_yaml_and_named_so():
    error = syntax_error("a: [", "")

    assert str(error).startswith("<text>:1:5: invalid YAML: expected the node content")


# --- import_models -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("models.yaml", BAD_YAML, "models.yaml:3:9: invalid YAML: mapping values are not allowed here"),
        ("models.json", BAD_JSON, "models.json:2:20: invalid JSON: Expecting ',' delimiter"),
    ],
)
def test_import_models_reports_a_malformed_file_in_one_line_and_fails(tmp_path, name, content, expected):
    # Given a malformed file
    path = tmp_path / name
    path.write_text(content)

    # When the command runs as an operator runs it
    result = subprocess.run(
        [sys.executable, "manage.py", "import_models", str(path)],
        cwd=ROOT,
        env={**os.environ, "STATUSTRACKER_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    # Then it exits non-zero with one line naming the file, line, column and problem, and no traceback
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"CommandError: {tmp_path / expected}"]
    assert result.stdout == ""


@pytest.mark.django_db
def test_import_models_imports_nothing_when_any_file_is_malformed(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text(BAD_JSON)
    out = StringIO()

    with pytest.raises(CommandError, match=r"broken\.json:2:20: invalid JSON"):
        call_command("import_models", str(EXAMPLES / "order-fulfilment.yaml"), str(broken), stdout=out)

    assert out.getvalue() == ""
    assert not StatusModel.objects.exists()


def test_import_models_says_which_file_it_cannot_read(tmp_path):
    with pytest.raises(CommandError) as caught:
        call_command("import_models", str(tmp_path / "missing.yaml"))

    assert str(caught.value) == f"{tmp_path / 'missing.yaml'}: cannot read: No such file or directory"
