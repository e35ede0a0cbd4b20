"""What the app switches on once Django is ready (imported by ``BatchesConfig.ready``, once): the
system checks (registered when their modules load) and the receivers through which the index tells
the notifications what changed, without importing them."""

from . import checks  # noqa: F401  (the sign-in and projects checks)
from .index.signals import batches_changed, sync_pass_finished
from .notify.rules import on_batches_changed, on_sync_pass_finished
from .oversight import rates  # noqa: F401  (the price overrides check)
from .results.prepare import on_batches_changed as prepare_when_finished

batches_changed.connect(on_batches_changed, dispatch_uid="batches.notify")
sync_pass_finished.connect(on_sync_pass_finished, dispatch_uid="batches.notify.at_risk")
batches_changed.connect(prepare_when_finished, dispatch_uid="batches.results.prepare")
