import django.dispatch

batches_changed = django.dispatch.Signal()
