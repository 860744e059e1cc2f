"""The settings example as a minimal Django project (no database)."""
