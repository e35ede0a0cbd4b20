from django.urls import path

from .views import browse, bulk_cancel, costs, create, estimate, find, find_export, insights, jobs, notifications, results

app_name = "batches"

# Mounted under /projects/<slug:project>/ (dashboard/urls.py): every view receives the project slug.
urlpatterns = [
    path("batches/", browse.batch_list, name="list"),
    path("batches/new/", create.batch_create, name="create"),
    path("price/", estimate.model_price, name="price"),
    # Before batches/<id>/: these names are not batch ids.
    path("batches/export.<str:kind>", find_export.export, name="export"),
    path("batches/cost/", find.cost_total, name="cost_total"),
    path("batches/bulk-cancel/", bulk_cancel.bulk_cancel, name="bulk_cancel"),
    path("batches/<str:batch_id>/", browse.batch_detail, name="detail"),
    path("batches/<str:batch_id>/results/", results.batch_results, name="results"),
    path("batches/<str:batch_id>/files/<str:kind>.jsonl", results.file_download, name="file_download"),
    path("batches/<str:batch_id>/retry-failed.jsonl", results.retry_failed_download, name="retry_failed_download"),
    path("batches/<str:batch_id>/retry-failed/", results.retry_failed_create, name="retry_failed"),
    path("batches/<str:batch_id>/cancel/", browse.batch_cancel, name="cancel"),
    path("insights/", insights.project_insights, name="insights"),
    path("costs/", costs.project_costs, name="costs"),
    path("batches/<str:batch_id>/watch/", notifications.batch_watch, name="batch_watch"),
    path("notifications/", notifications.notification_rules, name="notifications"),
    path("jobs/", jobs.job_list, name="job_list"),
    path("jobs/new/", jobs.job_create, name="job_create"),
    path("jobs/<int:job_id>/", jobs.job_detail, name="job_detail"),
    path("jobs/<int:job_id>/summary.json", jobs.job_summary, name="job_summary"),
    path("jobs/<int:job_id>/results.jsonl", jobs.job_results_file, name="job_results_file"),
    path("jobs/<int:job_id>/failed.jsonl", jobs.job_failed_file, name="job_failed_file"),
    path("jobs/<int:job_id>/results/", jobs.job_results_page, name="job_results"),
    path("jobs/<int:job_id>/<str:action>/", jobs.job_action, name="job_action"),
    path("notifications/<int:rule_id>/delete/", notifications.notification_rule_delete, name="notification_rule_delete"),
]
