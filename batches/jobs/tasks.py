"""placeholder"""


def on_batches_changed(sender, project, changes, **kwargs):
    return None
