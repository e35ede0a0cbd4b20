"""Input validation for notification rules and "Notify me"."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email

from ..models import NotificationRule
from . import egress

Kind = NotificationRule.Kind
Channel = NotificationRule.Channel


class RuleForm(forms.Form):
    kind = forms.ChoiceField(label="When", choices=Kind.choices, initial=Kind.FAILED_OR_EXPIRED, widget=forms.RadioSelect)
    threshold = forms.FloatField(
        label="Failure rate above (%)", required=False, min_value=0, max_value=100,
        help_text="Failed requests ÷ all requests, 0–100 %.",
    )
    channel = forms.ChoiceField(label="Send by", choices=Channel.choices)
    target = forms.CharField(
        label="To", max_length=500, strip=True,
        help_text="An email address, or a Slack-compatible incoming-webhook URL (https://).",
    )

    #: The fields that only some rule kinds take; the page shows each under its kind, and only while
    #: that kind is picked (CSS on the radio's :checked state, so without JavaScript too).
    KIND_FIELDS = {Kind.FAILURE_RATE_ABOVE: ("threshold",)}

    def __init__(self, *args, project: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.project = project

    @property
    def kind_options(self) -> list[dict]:
        """Each rule kind with its radio button and the fields that apply to it alone."""
        return [
            {"radio": radio, "fields": [self[name] for name in self.KIND_FIELDS.get(radio.data["value"], ())]}
            for radio in self["kind"]
        ]

    @property
    def common_fields(self) -> list:
        """The fields every rule kind takes."""
        only_some = {name for names in self.KIND_FIELDS.values() for name in names}
        return [field for field in self if field.name != "kind" and field.name not in only_some]

    def clean(self):
        data = super().clean()
        kind, channel, target = data.get("kind"), data.get("channel"), data.get("target")
        if kind == Kind.FAILURE_RATE_ABOVE and data.get("threshold") is None and "threshold" not in self.errors:
            self.add_error("threshold", "Give the failure rate (0–100 %) above which to notify.")
        if kind != Kind.FAILURE_RATE_ABOVE:
            data["threshold"] = None
        if channel and target:
            try:
                if channel == Channel.EMAIL:
                    validate_email(target)
                else:
                    URLValidator(schemes=["https", "http"])(target)
            except ValidationError:
                message = "Enter a valid email address." if channel == Channel.EMAIL else "Enter an https:// webhook URL."
                self.add_error("target", message)
            else:
                if channel != Channel.EMAIL:
                    try:  # the same checks run again at every send (notify/egress.py)
                        egress.check_url_now(target)
                    except egress.EgressRefused as err:
                        self.add_error("target", str(err))
        if kind and channel and target and not self.errors:
            duplicate = NotificationRule.objects.filter(
                project=self.project, kind=kind, channel=channel, target=target, threshold=data["threshold"]
            )
            if duplicate.exists():
                raise ValidationError("This rule already exists.")
        return data


class WatchEmailForm(forms.Form):
    """Only without sign-in (DASHBOARD_AUTH=none): the address to notify, since nobody is signed in."""

    email = forms.EmailField(max_length=254)
