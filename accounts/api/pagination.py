from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """`{count, next, previous, results}` with `?page=` and an optional `?page_size=` (max 200).

    A `page_size` that is not a whole number from 1 is a 400 naming it (DRF would quietly use
    the default); one above the maximum is capped."""

    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None:
            try:
                value = int(raw)
            except ValueError:
                value = 0
            if value < 1:
                raise ValidationError({"page_size": ["A whole number from 1 (at most 200)."]})
        return super().get_page_size(request)
