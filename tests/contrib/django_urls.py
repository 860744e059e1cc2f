"""Views and URLs of the Django tests (``ROOT_URLCONF``)."""

from __future__ import annotations

import itertools

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.cache import cache_page

from hubkv import kv

_renders = itertools.count(1)


def visit(request: HttpRequest) -> JsonResponse:
    request.session["visits"] = request.session.get("visits", 0) + 1
    return JsonResponse({"visits": request.session["visits"], "key": request.session.session_key})


def logout(request: HttpRequest) -> HttpResponse:
    request.session.flush()
    return HttpResponse("bye")


@cache_page(60)
def report(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"render {next(_renders)}")


def flag(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"flag": kv.get("flag")})


urlpatterns = [
    path("visit", visit),
    path("logout", logout),
    path("report", report),
    path("flag", flag),
]
