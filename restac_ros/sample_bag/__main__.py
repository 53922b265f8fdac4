"""`python -m restac_ros.sample_bag OUT ...` == `restac-make-sample-bag OUT ...`."""

import sys

from .cli import main

sys.exit(main())
