from django.urls import path

from .views import browse

app_name = "batches"

urlpatterns = [
    path("batches/", browse.batch_list, name="list"),
    path("batches/<str:batch_id>/", browse.batch_detail, name="detail"),
    path("batches/<str:batch_id>/cancel/", browse.batch_cancel, name="cancel"),
]
