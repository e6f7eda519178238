"""Database access: the declarative base, portable column types and the async engine."""
