from django.apps import AppConfig


class CostsConfig(AppConfig):
    name = "batches.costs"
    label = "costs"
    verbose_name = "Budgets and billed costs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from batches.index.signals import batches_changed
        from batches.notify.tasks import register_message

        from .alerts import alert_message, on_batches_changed

        # Every committed index change (sync pass, webhook, the dashboard's own create) may move the
        # month's spend past a threshold: check at once rather than on the hourly billing pass.
        batches_changed.connect(on_batches_changed, dispatch_uid="batches.costs.budget")
        register_message("budget", alert_message)
        register_message("drift", alert_message)
