"""The query service shared by every network engine."""
