"""The database named by DATABASE_URL: the one in use, migrated, and enforcing what the app relies on.

scripts/test runs this file twice: on SQLite (no DATABASE_URL) and on a real PostgreSQL server
(scripts/with-postgres sets DATABASE_URL), so every test here holds on both.
"""

from __future__ import annotations

import os
from io import StringIO

import dj_database_url
import pytest
from django.core.management import call_command
from django.db import DataError, IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from batches.auth import MAX_IDENTITY_LENGTH
from batches.upstream import ID_PATTERN
from batches.forms import new_form_token
from batches.models import AuditEntry, CreateSubmission
from batches.projects import get_project
from batches.services import SubmissionInProgress, submission_claim

VENDOR_OF_ENGINE = {"django.db.backends.postgresql": "postgresql", "django.db.backends.sqlite3": "sqlite"}
# What each engine calls itself when asked, and the SQL that asks it.
SERVER_NAME_QUERY = {
    "postgresql": ("SELECT version()", "PostgreSQL "),
    "sqlite": ("SELECT 'SQLite ' || sqlite_version()", "SQLite "),
}


def expected_engine() -> str:
    """The engine DATABASE_URL names; without it the settings fall back to SQLite."""
    url = os.environ.get("DATABASE_URL", "")
    return dj_database_url.parse(url)["ENGINE"] if url else "django.db.backends.sqlite3"


def test_the_engine_in_use_is_the_one_database_url_names():
    assert connection.settings_dict["ENGINE"] == expected_engine()
    assert connection.vendor == VENDOR_OF_ENGINE[expected_engine()]


@pytest.mark.django_db
def test_the_server_answering_queries_is_that_engine():
    query, prefix = SERVER_NAME_QUERY[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(query)
        (name,) = cursor.fetchone()
    assert name.startswith(prefix)


@pytest.mark.django_db
def test_every_migration_is_applied_and_the_app_tables_exist():
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
    tables = set(connection.introspection.table_names())
    assert {AuditEntry._meta.db_table, CreateSubmission._meta.db_table} <= tables


@pytest.mark.django_db
def test_the_indexes_made_by_hand_survive_every_later_migration():
    """``q`` and the index generation lean on indexes that migrations 0005/0009 create with raw SQL;
    SQLite's table rebuilds drop such indexes silently (0014 put them back once)."""
    with connection.cursor() as cursor:
        indexes = set(connection.introspection.get_constraints(cursor, "batches_batchrecord"))
    expected = {"batchrecord_synced"} | ({"batchrecord_search"} if connection.vendor == "sqlite" else set())
    assert expected <= indexes


@pytest.mark.django_db
def test_the_models_have_no_changes_missing_from_the_migrations():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)  # exits 1 when a migration is missing
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db
def test_the_database_itself_refuses_a_second_submit_with_the_same_token():
    token = new_form_token()
    CreateSubmission.objects.create(token=token, actor="ann@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        CreateSubmission.objects.create(token=token, actor="ann@example.com")
    # The refused insert rolled back only its savepoint: the first submit is intact and readable.
    assert list(CreateSubmission.objects.filter(token=token).values_list("actor", flat=True)) == ["ann@example.com"]


@pytest.mark.django_db
def test_a_second_claim_of_a_token_finds_the_first_submit_instead_of_creating_one():
    token = new_form_token()
    first = submission_claim(get_project("default"), token, "ann@example.com")
    with pytest.raises(SubmissionInProgress) as repeat:
        submission_claim(get_project("default"), token, "ann@example.com")
    assert repeat.value.submission.pk == first.pk and repeat.value.submission.token == token
    assert CreateSubmission.objects.filter(token=token).count() == 1


@pytest.mark.django_db
def test_the_longest_ids_and_names_the_app_accepts_fit_their_columns():
    longest_id = "b" * 200
    assert ID_PATTERN.fullmatch(longest_id)  # the longest id validate_id lets through
    entry = AuditEntry.objects.create(
        actor="a" * MAX_IDENTITY_LENGTH, action=AuditEntry.Action.CANCEL, batch_id=longest_id, file_id=longest_id
    )
    entry.refresh_from_db()
    assert (len(entry.actor), len(entry.batch_id), len(entry.file_id)) == (MAX_IDENTITY_LENGTH, 200, 200)


@pytest.mark.django_db
def test_a_value_longer_than_its_column_is_not_silently_stored_on_postgresql():
    too_long = "t" * 65
    if connection.vendor == "postgresql":
        with pytest.raises(DataError), transaction.atomic():
            CreateSubmission.objects.create(token=too_long, actor="ann@example.com")
        assert not CreateSubmission.objects.exists()
    else:
        # SQLite does not enforce VARCHAR lengths; the form's max_length (64) is the guard there.
        assert connection.vendor == "sqlite"
        CreateSubmission.objects.create(token=too_long, actor="ann@example.com")
        assert CreateSubmission.objects.get().token == too_long


@pytest.mark.django_db(transaction=True)
def test_an_audit_row_is_committed_and_completed_when_the_upstream_is_unreachable(client, settings):
    settings.DASHBOARD_AUTH = "none"
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    response = client.post("/projects/default/batches/batch_abc123/cancel/")
    assert response.status_code == 302
    # transaction=True: no test transaction wraps this, so what is read back was really committed.
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.batch_id, entry.outcome) == ("cancel", "batch_abc123", "error")
    assert entry.finished_at is not None
    assert "could not be reached" in entry.message

