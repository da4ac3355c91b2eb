"""API plumbing shared by every app: tokens and their scopes, authentication, body parsers,
pagination and the error format. It imports nothing from the apps that use it."""
