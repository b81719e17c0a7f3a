"""The URLconf of the Django app the transparency tests wrap."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.urls import path


def item(request: HttpRequest, item_id: int) -> HttpResponse:
    return JsonResponse({"item": item_id, "q": request.GET.get("q")}, headers={"x-app": "django"})


def echo(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return HttpResponse(request.body[::-1], status=201, content_type="application/octet-stream")


def own(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"the app's own {request.path}", content_type="text/plain", headers={"x-own": "1"})


urlpatterns = [
    path("items/<int:item_id>/", item),
    path("echo/", echo),
    path("health", own),
    path("metrics", own),
]
