"""Plain media / ML logic. Nothing in this package imports dagster."""
