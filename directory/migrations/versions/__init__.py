"""Revisions of the directory schema: ``dir_0001`` (tables and search), then onwards."""
