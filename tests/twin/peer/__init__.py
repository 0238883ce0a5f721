"""Helpers for running other projects' device tests against twins (loaded into their pytest)."""
