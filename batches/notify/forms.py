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
    kind = forms.ChoiceField(label="When", choices=Kind.choices)
    threshold = forms.FloatField(
        label="Failure rate above (%)", required=False, min_value=0, max_value=100,
        help_text="Only for the failure-rate rule: failed requests ÷ all requests, 0–100 %.",
    )
    channel = forms.ChoiceField(label="Send by", choices=Channel.choices)
    target = forms.CharField(
        label="To", max_length=500, strip=True,
        help_text="An email address, or a Slack-compatible incoming-webhook URL (https://).",
    )

    def __init__(self, *args, project: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.project = project

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
