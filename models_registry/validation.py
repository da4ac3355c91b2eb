"""The one validator the admin, ``import_models`` and the API call: a document's rules
(``definition.validate_definition``) checked against the handlers this installation has registered."""

from models_registry.definition import validate_definition
from models_registry.handlers import handler_names


def document_validate(raw: object) -> dict:
    """The canonical form of a status model document, or ``DefinitionError`` with every problem."""
    return validate_definition(raw, handler_names=set(handler_names()))
