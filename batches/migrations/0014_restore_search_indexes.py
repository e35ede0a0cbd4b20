"""Put back the two indexes that SQLite's table rebuilds of migrations 0010-0013 dropped.

Migrations 0005 and 0009 create ``batchrecord_search`` (project, search_text; SQLite only: it lets ``q``
scan short index entries instead of whole rows, ~30 ms instead of ~200 ms over 200,000 batches) and
``batchrecord_synced`` (last_synced: ``index_generation()`` reads its MAX) with raw SQL, so Django's model
state does not know them. On SQLite, a migration that alters the table rebuilds it (create a copy, move
the rows, drop the old one) and re-creates only the indexes the model state lists: both were lost.
PostgreSQL alters in place and kept them; there ``IF NOT EXISTS`` makes this a no-op.
``tests/test_database.py`` checks that a migrated database has them, so a later rebuild that drops them
again fails the tests instead of slowing ``q`` down unseen.
"""

from django.db import migrations

#: name: (columns, the one database vendor that gets it, or None for every one)
INDEXES = {
    "batchrecord_synced": ("last_synced", None),
    "batchrecord_search": ("project, search_text", "sqlite"),
}


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for name, (columns, only_on) in INDEXES.items():
        if only_on in (None, vendor):
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON batches_batchrecord ({columns})")


class Migration(migrations.Migration):
    dependencies = [("batches", "0013_providers_batchrecord_provider")]

    # Reversing leaves them: 0005 and 0009 own them, and their own reversal drops them.
    operations = [migrations.RunPython(create, migrations.RunPython.noop, elidable=False)]
