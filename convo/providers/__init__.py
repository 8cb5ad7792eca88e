"""Provider adapters: one module per provider, the sandbox, and simulators."""
