"""What the app switches on once Django is ready (imported by ``BatchesConfig.ready``, once): the
system checks (registered when their modules load) and the receiver that turns batch changes into
notifications."""

from . import checks  # noqa: F401  (the sign-in and projects checks)
from .index.signals import batches_changed
from .notify.rules import on_batches_changed
from .oversight import pricing  # noqa: F401  (the price overrides check)

batches_changed.connect(on_batches_changed, dispatch_uid="batches.notify")
