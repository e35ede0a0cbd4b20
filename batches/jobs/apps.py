from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "batches.jobs"
    label = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        # Models are loaded only now: the receivers that need them are switched on here, once.
        from . import receivers  # noqa: F401
