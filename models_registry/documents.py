"""Model files as people write them: YAML or JSON text that may not parse, said with where and why.

``parse_model_file`` reads the documents of a file the way ``import_models`` and an upload in the
admin do, and turns what PyYAML or ``json`` raise about malformed text into one
``ModelFileSyntaxError``: the file, the 1-based line and column, and what is wrong, in one line.
Whether the documents it returns are valid status models is the validator's to say.
"""

from __future__ import annotations

import json

import yaml
from yaml.reader import ReaderError

from models_registry.services import parse_documents


class ModelFileSyntaxError(ValueError):
    """A model file that is not well-formed: not UTF-8, or not YAML or JSON.

    ``line`` and ``column`` count from 1, in characters; they point where the parser stopped, or at
    the start of the file when it does not say.
    """

    def __init__(self, *, filename: str, line: int, column: int, message: str):
        self.filename = filename
        self.line = line
        self.column = column
        self.message = message
        super().__init__(f"{filename or '<text>'}:{line}:{column}: {message}")


def parse_model_file(content: str | bytes, *, filename: str = "") -> list:
    """The documents of a model file: JSON when ``filename`` ends in ``.json``, YAML otherwise.

    Bytes are read as UTF-8 (a leading byte order mark is allowed). Raises ``ModelFileSyntaxError``.
    """
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            before = content[: exc.start]
            line_start = before.rfind(b"\n") + 1
            column = len(before[line_start:].decode("utf-8", errors="replace")) + 1
            raise ModelFileSyntaxError(
                filename=filename, line=before.count(b"\n") + 1, column=column, message=f"not UTF-8: {exc.reason}"
            ) from exc
    try:
        return parse_documents(content, filename=filename)
    except json.JSONDecodeError as exc:
        raise ModelFileSyntaxError(
            filename=filename, line=exc.lineno, column=exc.colno, message=f"invalid JSON: {exc.msg}"
        ) from exc
    except ReaderError as exc:
        before = content[: exc.position]
        raise ModelFileSyntaxError(
            filename=filename,
            line=before.count("\n") + 1,
            column=exc.position - (before.rfind("\n") + 1) + 1,
            message=f"invalid YAML: {str(exc).splitlines()[0]}",
        ) from exc
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, filename=filename) from exc


def _yaml_error(exc: yaml.MarkedYAMLError, *, filename: str) -> ModelFileSyntaxError:
    # PyYAML's marks count from 0. The problem is where parsing stopped; the context, when there is
    # one, is the construct left open (the flow sequence missing its "]"), often lines earlier.
    mark = exc.problem_mark or exc.context_mark
    message = exc.problem or exc.context or "malformed"
    if exc.problem and exc.context:
        where = f" that starts on line {exc.context_mark.line + 1}" if exc.context_mark else ""
        message = f"{message} ({exc.context}{where})"
    return ModelFileSyntaxError(
        filename=filename,
        line=mark.line + 1 if mark else 1,
        column=mark.column + 1 if mark else 1,
        message=f"invalid YAML: {message}",
    )
