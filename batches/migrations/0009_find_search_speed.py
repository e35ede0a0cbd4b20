"""Indexes for the ``q`` search and the cached counts of the index (batches/index/query.py).

- ``batchrecord_synced`` on ``last_synced``: ``index_generation()`` reads ``MAX(last_synced)`` to know
  whether the cached per-status counts are still the index's; without it that is a full scan.
- PostgreSQL only: a trigram GIN index on ``search_text`` (the ``pg_trgm`` extension), which serves the
  ``LIKE '%…%'`` of ``q`` instead of reading every row. Creating the extension needs the CREATE
  privilege on the database (pg_trgm is a trusted extension from PostgreSQL 13); when it is not
  available or not allowed, the index is skipped and ``q`` scans as before, with a note on stderr.
  SQLite keeps the (project, search_text) index of migration 0005 and matches with GLOB.
"""

import sys

from django.db import migrations, transaction

SYNCED = "batchrecord_synced"
TRIGRAM = "batchrecord_search_trgm"


def create(apps, schema_editor):
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {SYNCED} ON batches_batchrecord (last_synced)")
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        available = cursor.fetchone() is not None
    if not available:
        print("0009: the pg_trgm extension is not installed on this server; q searches scan", file=sys.stderr)
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):  # a savepoint: a refusal rolls back only this
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {TRIGRAM} ON batches_batchrecord USING gin (search_text gin_trgm_ops)"
            )
    except Exception as error:  # noqa: BLE001 - any refusal (privileges, extension) leaves q scanning
        print(f"0009: no trigram index for q ({error}); q searches scan", file=sys.stderr)


def drop(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {SYNCED}")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {TRIGRAM}")


class Migration(migrations.Migration):
    dependencies = [("batches", "0008_results_index")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
