"""The patient store: an embedded, versioned SQLite database of patient history."""
