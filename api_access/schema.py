"""The OpenAPI schema's view class: drf-spectacular's, plus the answers every endpoint can give.

Views document their own answers with ``@extend_schema``; what the API plumbing adds to all of them
is said here once:

- a 400's body in the error format (``api_access.errors``) where a view gave none, and the 400 of
  a paginated list (a malformed ``limit`` or ``offset``, ``api_access.pagination``);
- the 429 of the rate limits (``api_access.throttling``) on every limited endpoint;
- that text in a query parameter may not hold a NUL character (DRF's fields refuse it: the
  database could not compare it), and that a request body, where an operation takes one, is
  required.
"""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, for a person."},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Field path ('' for the request as a whole) -> messages.",
        },
    },
    "required": ["detail", "errors"],
}
TOO_MANY_REQUESTS = {
    "description": "Rate limit reached (per token; per client address without one). Try again after "
    "`Retry-After` seconds.",
    "headers": {
        "Retry-After": {"schema": {"type": "integer", "minimum": 1}, "description": "Seconds until the limit resets."}
    },
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
        }
    },
}


NO_NUL = "^[^\\u0000]*$"
PAGINATION_PARAMETERS = {"limit", "offset"}


class AutoSchema(SpectacularAutoSchema):
    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if not operation:
            return operation
        parameters = operation.get("parameters", [])
        for parameter in parameters:
            schema = parameter.get("schema", {})
            if parameter["in"] == "query" and schema.get("type") == "string" and not schema.keys() & {"enum", "format"}:
                schema.setdefault("pattern", NO_NUL)
        if "requestBody" in operation:
            # Every operation that takes a body needs one (drf-spectacular cannot tell for bodies
            # described as raw JSON Schema).
            operation["requestBody"]["required"] = True
        responses = operation.setdefault("responses", {})
        if any(p["in"] == "query" and p["name"] in PAGINATION_PARAMETERS for p in parameters):
            responses.setdefault("400", {"description": "A parameter is invalid."})
        bad_request = responses.get("400")
        if bad_request is not None and "content" not in bad_request:
            bad_request["content"] = {"application/json": {"schema": ERROR_SCHEMA}}
        if self.view.throttle_classes:
            responses.setdefault("429", TOO_MANY_REQUESTS)
        return operation
