"""URLs of the example."""

from django.urls import path

from . import views

urlpatterns = [
    path("settings", views.settings_view),
    path("users/<str:user_id>/prefs", views.prefs_view),
    path("visits", views.visits_view),
]
