"""Booking a checked order in Exact Online (the worker's side of the pipeline)."""
