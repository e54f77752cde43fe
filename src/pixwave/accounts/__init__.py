"""Users, API tokens and the authentication dependencies."""
