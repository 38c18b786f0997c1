"""Forms of the tenant administration pages; the rules themselves live in accounts.services."""

from django import forms
from django.core.exceptions import ValidationError

from .choices import Role


def apply_validation_error(form: forms.Form, exc: ValidationError) -> None:
    """Put a service's ValidationError next to the form field it names (else on the form)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            target = field if field in form.fields else None
            for message in errors:
                form.add_error(target, message)
    else:
        for message in exc.messages:
            form.add_error(None, message)


class MemberAddForm(forms.Form):
    username = forms.RegexField(
        regex=r"^[\w.@+-]+\Z",
        max_length=150,
        help_text="An existing user, or a new one (then a password is required).",
        error_messages={"invalid": "Use letters, digits and @ . + - _ only."},
    )
    email = forms.EmailField(required=False)
    password = forms.CharField(
        required=False, max_length=128, widget=forms.PasswordInput, help_text="Only for a new user."
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "username": data["username"],
            "email": data.get("email") or "",
            "password": data.get("password") or None,
            "role": data["role"],
        }


class MemberUpdateForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
    is_active = forms.BooleanField(required=False, label="Active")


class PasswordChangeForm(forms.Form):
    """Your own password; the rules (current password, validators) live in the service."""

    old_password = forms.CharField(
        label="Current password",
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    new_password = forms.CharField(
        label="New password",
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
