from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "batches"
    verbose_name = "Batches"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the sign-in and projects system checks)
        from .oversight import pricing  # noqa: F401  (registers the price overrides check)
        from .index.signals import batches_changed
        from .notify.rules import on_batches_changed

        batches_changed.connect(on_batches_changed, dispatch_uid="batches.notify")
