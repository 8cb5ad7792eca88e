"""Flow language: spec (data), loader, machine, engine, templates."""
