"""convo: async two-way SMS conversations and voice IVR from declarative YAML flows."""
