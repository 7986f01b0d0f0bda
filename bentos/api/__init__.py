"""The platform's REST API (FastAPI), mounted by the BentoML service and served directly in tests."""
