"""The example's own tests: ``python manage.py test``."""

from __future__ import annotations

from django.core.cache import cache
from django.test import SimpleTestCase

from hubkv import kv


class SettingsExampleTests(SimpleTestCase):
    def setUp(self) -> None:
        kv.clear()

    def test_settings_round_trip(self) -> None:
        self.assertEqual(self.client.get("/settings").json(), {"settings": None})
        response = self.client.put("/settings", {"theme": "dark"}, content_type="application/json")
        self.assertEqual(response.json(), {"ok": True})
        self.assertEqual(self.client.get("/settings").json(), {"settings": {"theme": "dark"}})
        self.assertEqual(kv.get("settings"), {"theme": "dark"})

    def test_prefs_are_per_user(self) -> None:
        self.client.put("/users/42/prefs", {"lang": "en"}, content_type="application/json")
        self.client.put("/users/7/prefs", {"lang": "fr"}, content_type="application/json")
        self.assertEqual(self.client.get("/users/42/prefs").json(), {"prefs": {"lang": "en"}})
        self.assertEqual(kv.keys("users:"), ["users:42:prefs", "users:7:prefs"])

    def test_bad_input_is_a_400(self) -> None:
        bad_id = self.client.put("/users/a%01b/prefs", {}, content_type="application/json")
        not_json = self.client.put("/settings", "theme=dark", content_type="text/plain")
        self.assertEqual((bad_id.status_code, not_json.status_code), (400, 400))
        self.assertIn("control character", bad_id.json()["error"])
        self.assertEqual(kv.keys(), [])

    def test_sessions_and_cache_share_the_store(self) -> None:
        counts = [self.client.get("/visits").json()["visits"] for _ in range(3)]
        self.assertEqual(counts, [1, 2, 3])
        cache.set("greeting", "hello")
        self.assertEqual(cache.get("greeting"), "hello")
        self.assertIn("django-cache::1:greeting", kv.keys("django-cache:"))
