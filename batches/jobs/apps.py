from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "batches.jobs"
    label = "jobs"
    verbose_name = "Jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ..index.signals import batches_changed
        from ..notify.tasks import register_message
        from . import notify
        from .tasks import on_batches_changed

        batches_changed.connect(on_batches_changed, dispatch_uid="batches.jobs")
        register_message(notify.FINISHED, notify.message)
        register_message(notify.HELD, notify.message)
