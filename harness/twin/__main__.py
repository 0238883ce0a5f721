"""`python -m harness.twin twin up ...` (same as `hil twin up ...`)."""

import sys

from harness.twin.cli import main

sys.exit(main())
