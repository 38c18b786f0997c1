"""Sign-in backend: Django's ModelBackend, but a service account never signs in (pages, the
admin, POST /api/v1/auth/token/); it uses the tokens its tenant admin issues."""

from django.contrib.auth.backends import ModelBackend

from .selectors import is_service_account


class PeopleOnlyBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        # Its password is unusable anyway; this holds even if someone sets one.
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and is_service_account(user):
            return None
        return user
