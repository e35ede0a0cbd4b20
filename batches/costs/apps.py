from django.apps import AppConfig


class CostsConfig(AppConfig):
    name = "batches.costs"
    label = "costs"
    verbose_name = "Budgets and billed costs"

    def ready(self) -> None:
        # Models are loaded only now: the receivers that need them are switched on here, once.
        from . import receivers  # noqa: F401
