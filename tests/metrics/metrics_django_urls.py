"""The URLconf of the Django app the metrics tests wrap."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def item(request: HttpRequest, item_id: int) -> HttpResponse:
    return HttpResponse(f"item {item_id}", content_type="text/plain")


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("home", content_type="text/plain")


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("django boom")


api = [path("items/<int:item_id>/", item)]
urlpatterns = [path("", home), path("api/", include(api)), path("boom/", boom)]
