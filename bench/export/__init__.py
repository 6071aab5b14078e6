"""A stored run in other formats: JSON and CSV of its records, and pytest-benchmark's JSON for tools that read it."""
