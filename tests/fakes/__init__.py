"""In-memory implementations of the project's ports, for tests."""
