"""The operator dashboard: Overview, Report, Errors, Open and Configuration at /dashboard."""
