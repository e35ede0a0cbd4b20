"""What the costs app listens to, switched on once by ``CostsConfig.ready``.

Every committed index change (sync pass, webhook, the dashboard's own create) may move the month's
spend past a threshold: it is checked at once rather than on the hourly billing pass. Budget and drift
alerts have their message writer.
"""

from ..index.signals import batches_changed
from ..notify.tasks import register_message
from .alerts import alert_label, alert_message, on_batches_changed

batches_changed.connect(on_batches_changed, dispatch_uid="batches.costs.budget")
register_message("budget", alert_message, alert_label)
register_message("drift", alert_message, alert_label)
