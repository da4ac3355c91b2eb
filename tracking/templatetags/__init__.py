"""Template tags of the customer page."""
