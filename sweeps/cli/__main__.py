"""`python -m sweeps.cli`: the same as the `ovat` command."""

import sys

from sweeps.cli import main

sys.exit(main())
