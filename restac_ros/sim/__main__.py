"""`python -m restac_ros.sim record OUT --seeds 0-9` (see cli.py)."""

import sys

from .cli import main

sys.exit(main())
