"""``python -m targets.worker``: serve the worker protocol on stdin/stdout (the zipapp's entry does the same)."""

from __future__ import annotations

import sys

from .serve import main

sys.exit(main())
