from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination

from accounts.api.query import Param, check


class Pagination(PageNumberPagination):
    """`{count, next, previous, results}` with `?page=` and an optional `?page_size=` (max 200).

    Both follow the query rule (accounts/api/query.py: given once, with a value). A `page` or
    `page_size` that is not a whole number from 1 is a 400 naming it (DRF would answer 404, or
    quietly use the default); a `page` past the last one is a 404; a `page_size` above the
    maximum is capped."""

    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request):
        check(
            request.query_params, [Param(self.page_query_param), Param(self.page_size_query_param)]
        )
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None:
            try:
                value = int(raw)
            except ValueError:
                value = 0
            if value < 1:
                raise ValidationError({"page_size": ["A whole number from 1 (at most 200)."]})
        return super().get_page_size(request)

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and raw not in self.last_page_strings:
            if not (raw.isascii() and raw.isdigit() and int(raw) >= 1):
                raise ValidationError({self.page_query_param: ["A page number from 1."]})
        return super().get_page_number(request, paginator)
