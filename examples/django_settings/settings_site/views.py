"""Views of the example: the same API as the Flask example.

``PUT /settings`` stores the JSON body, ``GET /settings`` returns it;
``/users/<id>/prefs`` does the same under each user's prefix;
``GET /visits`` counts the visits of this session (sessions live in the cache).
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from hubkv import InvalidKeyError, KVError, SerializationError, ValueTooLargeError, kv
from hubkv.store import KV


def _json_view(request: HttpRequest, store: KV, key: str, name: str) -> HttpResponse:
    if request.method == "GET":
        return JsonResponse({name: store.get(key)})
    try:
        value = json.loads(request.body)
    except ValueError:
        return JsonResponse({"error": "the body must be JSON"}, status=400)
    store.set(key, value)
    return JsonResponse({"ok": True})


def _bad_input(error: KVError) -> JsonResponse:
    return JsonResponse({"error": str(error)}, status=400)


@csrf_exempt
@require_http_methods(["GET", "PUT"])
def settings_view(request: HttpRequest) -> HttpResponse:
    try:
        return _json_view(request, kv, "settings", "settings")
    except (SerializationError, ValueTooLargeError) as error:
        return _bad_input(error)


@csrf_exempt
@require_http_methods(["GET", "PUT"])
def prefs_view(request: HttpRequest, user_id: str) -> HttpResponse:
    try:
        # A prefixed view: each user's keys live under "users:<id>:".
        return _json_view(request, kv.prefixed(f"users:{user_id}:"), "prefs", "prefs")
    except (InvalidKeyError, SerializationError, ValueTooLargeError) as error:
        return _bad_input(error)


def visits_view(request: HttpRequest) -> JsonResponse:
    request.session["visits"] = request.session.get("visits", 0) + 1
    return JsonResponse({"visits": request.session["visits"]})
