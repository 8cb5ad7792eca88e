"""The aiohttp server: app factory, webhooks, admin API, sandbox routes."""
