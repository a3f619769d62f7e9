"""`python -m app.cli`: the `statewriter` command."""

import sys

from app.cli.commands import main

sys.exit(main())
