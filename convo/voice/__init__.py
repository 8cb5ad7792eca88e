"""Voice: neutral call instructions and their renderers."""
