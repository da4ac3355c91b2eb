"""What operators do to instances by hand: move them to a state, migrate them to another version."""
