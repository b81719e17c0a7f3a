"""The URLconf of the Django app the tests wrap."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

import ops_observe


def item(request: HttpRequest, item_id: int) -> HttpResponse:
    return HttpResponse(f"django {item_id} {ops_observe.get_correlation_id()}", content_type="text/plain")


urlpatterns = [path("django/<int:item_id>/", item)]
