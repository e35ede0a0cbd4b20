from django.urls import include, path

from batches.views.browse import root
from batches.views.health import healthz

urlpatterns = [
    path("", root, name="root"),
    path("healthz", healthz, name="healthz"),
    path("", include("batches.urls")),
]
