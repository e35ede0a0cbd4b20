"""A job's actions (batches/jobs/services.py) among the audit trail's choices, so ``/audit/?action=job-retry``
filters by them. Choices live in Python: no SQL on any database (``sqlmigrate batches 0015`` says no-op)."""

from django.db import migrations, models

ACTIONS = [("create", "create"), ("cancel", "cancel"), ("upload", "upload"), ("job-create", "job create"),
           ("job-pause", "job pause"), ("job-resume", "job resume"), ("job-cancel", "job cancel"), ("job-retry", "job retry")]


class Migration(migrations.Migration):
    dependencies = [("batches", "0014_restore_search_indexes")]
    operations = [migrations.AlterField("auditentry", "action", models.CharField(choices=ACTIONS, db_index=True, max_length=16))]
