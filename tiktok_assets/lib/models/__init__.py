"""Model wrappers: weight resolution, device choice and a per-process cache. No dagster here."""
