"""The REST API: FastAPI over the same use cases the CLI calls (docs/api.md)."""
