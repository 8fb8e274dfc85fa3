"""URLs of the internal binding endpoints (served only by the runtime)."""

from django.urls import path

from . import api

urlpatterns = [
    path("internal/preview/events", api.events, name="preview-events"),
    path(
        "internal/preview/<str:kind>/<str:resource_id>",
        api.binding,
        name="preview-binding",
    ),
]
