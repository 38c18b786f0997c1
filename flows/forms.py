"""Forms of the flow pages: parsing and checking of query strings and posted input only."""

from django import forms
from django.db.models import Q, QuerySet

from .choices import FlowStatus

YES_NO = [("", "Any"), ("yes", "Public"), ("no", "Not public")]


class FlowFilterForm(forms.Form):
    """The flow list's search box and filters (a GET form)."""

    q = forms.CharField(required=False, max_length=100, label="Search")
    scenario = forms.CharField(required=False, max_length=128, label="Business scenario")
    owner = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Owner")
    status = forms.ChoiceField(
        required=False,
        label="Status",
        choices=[("", "Any"), *FlowStatus.choices, ("frozen", "Frozen")],
    )
    public = forms.ChoiceField(required=False, choices=YES_NO, label="Public")

    def __init__(self, *args, owners=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = [("", "Anyone"), *[(u.pk, u.username) for u in owners]]

    def selector_filters(self) -> dict:
        """Exact-match filters, handed to flows.selectors.flow_list(filters=...)."""
        data = self.cleaned_data if self.is_valid() else {}
        filters: dict = {}
        if data.get("scenario"):
            filters["business_scenario"] = data["scenario"]
        if data.get("owner"):
            filters["owner_id"] = data["owner"]
        status = data.get("status")
        if status == "frozen":
            filters["is_frozen"] = True
        elif status:
            filters["status"] = status
        if data.get("public") == "yes":
            filters["is_public"] = True
        elif data.get("public") == "no":
            filters["is_public"] = False
        return filters

    def search(self, qs: QuerySet) -> QuerySet:
        """Narrow an already permission-scoped queryset by the free-text search."""
        term = (self.cleaned_data.get("q") if self.is_valid() else "") or ""
        term = term.strip()
        if not term:
            return qs
        return qs.filter(
            Q(name__icontains=term)
            | Q(description__icontains=term)
            | Q(business_scenario__icontains=term)
        )
