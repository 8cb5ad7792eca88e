"""Stores: sessions, message log, suppressions, fragments; memory and SQLite built in."""
