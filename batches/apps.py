from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "batches"
    verbose_name = "Batches"

    def ready(self) -> None:
        # Models are loaded only now: what needs them is switched on here, in one place.
        from . import ready  # noqa: F401
