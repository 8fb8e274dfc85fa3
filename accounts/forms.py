"""Forms for the claim pages: input checks at the edge, nothing more."""

from datetime import timedelta

from django import forms

AGENT_GRACE_CHOICES = [
    ("", "No: stop the agent's access now (recommended)"),
    ("1", "Yes, for 1 hour"),
    ("4", "Yes, for 4 hours"),
    ("24", "Yes, for 24 hours"),
]


class ClaimActionForm(forms.Form):
    """Names the account the person reviewed, so a link swapped in another tab
    cannot be confirmed by mistake."""

    account = forms.RegexField(regex=r"^[0-9a-f]{32}\Z", widget=forms.HiddenInput)


def _account_name_field(*, required: bool) -> forms.CharField:
    return forms.CharField(
        label="Name it",
        max_length=100,
        required=required,
        help_text="How your accounts list shows it; you can change it later.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


def _clean_account_name(value: str) -> str:
    if any(not ch.isprintable() for ch in value):
        raise forms.ValidationError("A name is one line of printable characters.")
    return value


class ConfirmClaimForm(ClaimActionForm):
    name = _account_name_field(required=False)

    def clean_name(self) -> str:
        return _clean_account_name(self.cleaned_data["name"])

    agent_grace_hours = forms.TypedChoiceField(
        label="Let the agent keep deploying to this account?",
        choices=AGENT_GRACE_CHOICES,
        coerce=int,
        empty_value=None,
        required=False,
        initial="",
        widget=forms.RadioSelect,
    )

    @property
    def agent_grace(self) -> timedelta | None:
        hours = self.cleaned_data.get("agent_grace_hours")
        return timedelta(hours=hours) if hours else None


class OwnerTokenForm(forms.Form):
    name = forms.CharField(
        label="Token name",
        max_length=100,
        help_text="To recognise it later, e.g. “laptop” or “CI”.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class AccountNameForm(forms.Form):
    name = _account_name_field(required=True)

    def clean_name(self) -> str:
        return _clean_account_name(self.cleaned_data["name"])
