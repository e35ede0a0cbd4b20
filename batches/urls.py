from django.urls import path

from .views import browse, create, find, results

app_name = "batches"

# Mounted under /projects/<slug:project>/ (dashboard/urls.py): every view receives the project slug.
urlpatterns = [
    path("batches/", browse.batch_list, name="list"),
    path("batches/new/", create.batch_create, name="create"),
    # Before batches/<id>/: these names are not batch ids.
    path("batches/export.<str:kind>", find.export, name="export"),
    path("batches/bulk-cancel/", find.bulk_cancel, name="bulk_cancel"),
    path("batches/<str:batch_id>/", browse.batch_detail, name="detail"),
    path("batches/<str:batch_id>/results/", results.batch_results, name="results"),
    path("batches/<str:batch_id>/files/<str:kind>.jsonl", results.file_download, name="file_download"),
    path("batches/<str:batch_id>/retry-failed.jsonl", results.retry_failed_download, name="retry_failed_download"),
    path("batches/<str:batch_id>/retry-failed/", results.retry_failed_create, name="retry_failed"),
    path("batches/<str:batch_id>/cancel/", browse.batch_cancel, name="cancel"),
]
