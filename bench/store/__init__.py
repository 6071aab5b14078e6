"""The SQLite result store: runs and their typed records (`database`), committed cell by cell so nothing
finished is lost, and `merge`, which gathers stores and reassembles a sharded matrix into one run."""
