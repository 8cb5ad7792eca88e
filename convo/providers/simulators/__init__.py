"""Fakes of provider HTTP APIs, from their documents in shared/seeds."""
