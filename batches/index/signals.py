"""What the index tells the rest of the app when batches change.

``batches_changed`` is sent once per committed write that changed at least one batch's status, after
the transaction commits (``transaction.on_commit``), so a receiver never sees a change that was rolled
back and may read the new rows::

    from batches.index.signals import batches_changed

    @receiver(batches_changed)
    def on_batches_changed(sender, *, project, changes, **kwargs):
        for batch_id, (old, new) in changes.items():
            if old is None:
                continue  # newly indexed (backfill, first sight): not a transition
            ...

``sender`` names the writer: ``"sync"`` (the periodic sync), ``"webhook"`` (a webhook's refresh task)
or ``"dashboard"`` (a create or cancel through the dashboard). ``project`` is the project slug and
``changes`` maps ``batch_id`` to ``(old status or None, new status)``. Receivers run in the writer's
process (the sync command, the task worker or a web worker): keep them quick, and hand slow work
(mail, chat) to a task. A receiver that raises is logged and does not stop the writer.

``sync_pass_finished`` is sent (``sender="sync"``, ``project=slug``) after each successful sync pass
over a project: its index is fresh, so whatever judges every unfinished batch (the "at risk" rules)
may run now. Like ``batches_changed``, it lets the index tell others without importing them; its
receivers must not raise either.
"""

from django.dispatch import Signal

batches_changed = Signal()
sync_pass_finished = Signal()
