"""Management commands for API access."""
