"""Management commands of the pipeline."""
