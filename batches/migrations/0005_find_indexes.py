"""An index for the ``q`` search of the index (batches/index/query.py).

``q`` is a substring match on ``search_text`` and cannot seek any index; on SQLite an index on
(project, search_text) lets it scan 200,000 short index entries instead of the table's
rows with their raw JSON (about 30 ms instead of 1.5 s). It leaves status out on purpose: an index
that began (project, status) would also be chosen, being covering, for the per-status counts,
and scanning it costs three times the (project, status, created_at, batch_id) index. PostgreSQL refuses B-tree entries over ~2.7 kB and a row's search text can be
longer (16 metadata values of 512 characters), so there the index is not created and ``q`` scans.
"""

from django.db import migrations

INDEX = "batchrecord_search"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON batches_batchrecord (project, search_text)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("batches", "0004_webhook_delivery")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
