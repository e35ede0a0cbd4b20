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
        from .results.prepare import on_batches_changed as prepare_when_finished

        batches_changed.connect(on_batches_changed, dispatch_uid="batches.notify")
        batches_changed.connect(prepare_when_finished, dispatch_uid="batches.results.prepare")
