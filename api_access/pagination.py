"""Pagination for the REST API's lists: ``?limit=&offset=``, with a ceiling on ``limit``."""

from rest_framework.pagination import LimitOffsetPagination


class ApiPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500
