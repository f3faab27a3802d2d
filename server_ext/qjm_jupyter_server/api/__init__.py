"""API models (pydantic) and the OpenAPI document built from them."""
