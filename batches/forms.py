"""Input validation for creating a batch. The JSONL file itself is checked by :mod:`batches.jsonl`."""

from __future__ import annotations

import secrets

from django import forms

from .upstream import COMPLETION_WINDOWS, ENDPOINTS, InvalidId, validate_id

AUTO_ENDPOINT = "auto"
# CreateBatchRequest.metadata (NOTES.md §2.4): at most 16 pairs, keys ≤ 64 chars, values ≤ 512 chars.
METADATA_MAX_PAIRS = 16
METADATA_KEY_MAX = 64
METADATA_VALUE_MAX = 512
METADATA_ROWS_SHOWN = 4
# output_expires_after.seconds: 3600..2592000 (1 hour to 30 days), asked for in hours.
EXPIRY_MIN_HOURS = 1
EXPIRY_MAX_HOURS = 720


def new_form_token() -> str:
    return secrets.token_urlsafe(24)


class BatchCreateForm(forms.Form):
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)
    file = forms.FileField(
        required=False,
        allow_empty_file=True,  # an empty file gets the JSONL checker's message, like every other bad file
        label="JSONL file",
        widget=forms.ClearableFileInput(attrs={"accept": ".jsonl,.json,.txt,application/jsonl,application/x-ndjson"}),
    )
    input_file_id = forms.CharField(
        required=False,
        max_length=200,
        label="…or an uploaded file id",
        widget=forms.TextInput(attrs={"placeholder": "file-…", "autocomplete": "off", "spellcheck": "false"}),
    )
    endpoint = forms.ChoiceField(
        choices=[(AUTO_ENDPOINT, "From the file's url")] + [(e, e) for e in ENDPOINTS],
        initial=AUTO_ENDPOINT,
    )
    completion_window = forms.ChoiceField(choices=[(w, w) for w in COMPLETION_WINDOWS], initial="24h")
    output_expires_hours = forms.IntegerField(
        required=False,
        min_value=EXPIRY_MIN_HOURS,
        max_value=EXPIRY_MAX_HOURS,
        label="Delete results after (hours)",
        help_text="Optional, 1 to 720 hours (30 days). Empty: the API's default of 30 days.",
    )

    def __init__(self, *args, upload_too_large: bool = False, uses_files: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.upload_too_large = upload_too_large
        #: False for a provider whose batches take their requests inline (Anthropic): no file ids, no metadata.
        self.uses_files = uses_files
        if not uses_files:
            for name in ("endpoint", "completion_window"):
                self.fields[name].required = False
        self.metadata: dict[str, str] = {}
        self.metadata_rows: list[tuple[str, str]] = []
        if self.is_bound:
            keys = self.data.getlist("metadata_key") if hasattr(self.data, "getlist") else []
            values = self.data.getlist("metadata_value") if hasattr(self.data, "getlist") else []
            width = max(len(keys), len(values))
            keys += [""] * (width - len(keys))
            values += [""] * (width - len(values))
            self.metadata_rows = list(zip(keys, values))
        else:
            initial = self.initial.get("metadata") or {}
            self.metadata_rows = list(initial.items())
        shown = max(METADATA_ROWS_SHOWN, len(self.metadata_rows))
        self.metadata_rows += [("", "")] * (shown - len(self.metadata_rows))

    def clean_input_file_id(self) -> str:
        value = self.cleaned_data.get("input_file_id", "").strip()
        if value:
            try:
                validate_id(value, "file")
            except InvalidId as err:
                raise forms.ValidationError(str(err)) from err
        return value

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("file")
        file_id = cleaned.get("input_file_id")
        if self.upload_too_large:
            raise forms.ValidationError(
                "The file is larger than 200 MB, the most the Batch API accepts, so it was not uploaded. "
                "Split it into several files of at most 200 MB and 50,000 requests."
            )
        if upload and file_id:
            raise forms.ValidationError("Upload a file or give a file id, not both.")
        if not upload and not file_id and "input_file_id" not in self.errors:
            raise forms.ValidationError("Choose a JSONL file to upload, or give the id of an uploaded file.")
        if file_id and cleaned.get("endpoint") == AUTO_ENDPOINT:
            self.add_error("endpoint", "Choose the endpoint: it is read from the file only when you upload one.")
        self.metadata = self._clean_metadata()
        if not self.uses_files:
            if file_id:
                self.add_error("input_file_id", "This project's batches take their requests from a file uploaded here; they have no file ids.")
            if self.metadata:
                self.add_error(None, "This project's batches have no metadata: leave the metadata pairs empty.")
        return cleaned

    def _clean_metadata(self) -> dict[str, str]:
        metadata: dict[str, str] = {}
        for key, value in self.metadata_rows:
            key = key.strip()
            if not key and not value:
                continue
            if not key:
                self.add_error(None, f"Metadata value “{value[:40]}” has no key.")
                continue
            if len(key) > METADATA_KEY_MAX:
                self.add_error(None, f"Metadata key “{key[:40]}…” is longer than {METADATA_KEY_MAX} characters.")
                continue
            if len(value) > METADATA_VALUE_MAX:
                self.add_error(None, f"The value of metadata key “{key}” is longer than {METADATA_VALUE_MAX} characters.")
                continue
            if key in metadata:
                self.add_error(None, f"Metadata key “{key}” is given twice.")
                continue
            metadata[key] = value
        if len(metadata) > METADATA_MAX_PAIRS:
            self.add_error(None, f"At most {METADATA_MAX_PAIRS} metadata pairs are allowed; you gave {len(metadata)}.")
        return metadata

    @property
    def chosen_endpoint(self) -> str | None:
        endpoint = self.cleaned_data.get("endpoint")
        return None if endpoint == AUTO_ENDPOINT else endpoint

    @property
    def output_expires_seconds(self) -> int | None:
        hours = self.cleaned_data.get("output_expires_hours")
        return hours * 3600 if hours else None

    @property
    def can_add_metadata_row(self) -> bool:
        return len(self.metadata_rows) < METADATA_MAX_PAIRS
