from django.conf import settings
from django.urls import include, path

from django.views.generic import RedirectView

from batches.views.account import oidc_login_failed, oidc_signed_out
from batches.views.audit import audit_list
from batches.views.bulk_cancel import search_bulk_cancel
from batches.views.costs import all_costs
from batches.views.find import search, search_cost_total
from batches.views.find_export import search_export
from batches.views.health import healthz
from batches.views.insights import all_insights
from batches.views.ops import metrics, readyz
from batches.views.notifications import notification_history
from batches.views.projects import legacy_redirect, project_overview, root
from batches.views.webhooks import openai_webhook

urlpatterns = [
    path("", root, name="root"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("projects/", project_overview, name="projects"),
    path("projects/<str:project>/", RedirectView.as_view(pattern_name="batches:list"), name="project_home"),
    path("projects/<str:project>/", include("batches.urls")),
    path("batches/", legacy_redirect),
    path("batches/<path:rest>", legacy_redirect),
    path("audit/", audit_list, name="audit"),
    path("insights/", all_insights, name="insights"),
    path("costs/", all_costs, name="costs"),
    path("notifications/", notification_history, name="notifications"),
    path("webhooks/openai/<str:project>/", openai_webhook, name="openai_webhook"),
    path("search/", search, name="search"),
    path("search/export.<str:kind>", search_export, name="search_export"),
    path("search/cost/", search_cost_total, name="search_cost_total"),
    path("search/bulk-cancel/", search_bulk_cancel, name="search_bulk_cancel"),
]

if settings.DASHBOARD_AUTH == "oidc":
    urlpatterns += [
        path("oidc/", include("mozilla_django_oidc.urls")),
        path("oidc/failed/", oidc_login_failed, name="oidc_login_failed"),
        path("oidc/signed-out/", oidc_signed_out, name="oidc_signed_out"),
    ]

# Error pages rendered with the request (identity bar, CSP nonce, htmx partials).
handler403 = "batches.views.errors.permission_denied"
handler404 = "batches.views.errors.page_not_found"
handler500 = "batches.views.errors.server_error"
