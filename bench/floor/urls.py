"""Two minimal views: the rows a filtered list page shows, and one batch's row, read with one query each
and rendered by a plain template loop. What Django itself costs on this machine for the same rows."""

from django.shortcuts import get_object_or_404, render
from django.urls import path

from batches.models import BatchRecord


def floor_list(request):
    status = request.GET.get("status", "failed")
    limit = min(int(request.GET.get("limit", "20")), 100)
    rows = BatchRecord.objects.filter(project="default", status=status).order_by("-created_at", "-batch_id")[:limit]
    return render(request, "floor_list.html", {"rows": rows})


def floor_batch(request, batch_id):
    record = get_object_or_404(BatchRecord, project="default", batch_id=batch_id)
    return render(request, "floor_batch.html", {"record": record})


urlpatterns = [
    path("floor/batches/", floor_list),
    path("floor/batches/<str:batch_id>/", floor_batch),
]
