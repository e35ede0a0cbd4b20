"""What the jobs app listens to, switched on once by ``JobsConfig.ready``: batch changes move jobs on,
and the jobs' own notifications have their message writers."""

from ..index.signals import batches_changed
from ..notify.tasks import register_message
from . import notify
from .tasks import on_batches_changed

batches_changed.connect(on_batches_changed, dispatch_uid="batches.jobs")
register_message(notify.FINISHED, notify.message, notify.LABELS.__getitem__)
register_message(notify.HELD, notify.message, notify.LABELS.__getitem__)
