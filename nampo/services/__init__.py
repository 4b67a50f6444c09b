"""Services nampo runs locally: the STAC API (stac-fastapi-pgstac on PostgreSQL)."""
