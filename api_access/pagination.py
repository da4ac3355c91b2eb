"""Pagination for the REST API's lists: ``?limit=&offset=``, with a ceiling on ``limit``.

DRF's limit-offset pagination reads a malformed ``limit`` or ``offset`` as if it were absent; here
it is a 400 in the API's error format, as the schema (integers, ``limit`` at least 1, ``offset``
at least 0) says. A ``limit`` above the ceiling is cut to it.
"""

import re

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

INTEGER = re.compile(r"-?[0-9]+")


class ApiPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500

    def get_limit(self, request) -> int:
        limit = self._integer(request, self.limit_query_param, minimum=1)
        return self.default_limit if limit is None else min(limit, self.max_limit)

    def get_offset(self, request) -> int:
        offset = self._integer(request, self.offset_query_param, minimum=0)
        return 0 if offset is None else offset

    @staticmethod
    def _integer(request, name: str, *, minimum: int) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        if not INTEGER.fullmatch(raw) or int(raw) < minimum:
            raise ValidationError({name: [f"Must be an integer of at least {minimum}."]})
        return int(raw)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"]["minimum"] = 1
                parameter["description"] = (
                    f"Results per page: default {self.default_limit}, larger values are cut to {self.max_limit}."
                )
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"]["minimum"] = 0
                parameter["description"] = "How many results to skip."
        return parameters
