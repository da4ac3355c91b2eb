"""Management commands for status model definitions."""
