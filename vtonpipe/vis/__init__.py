"""Drawing annotations (kept apart from computing them)."""
