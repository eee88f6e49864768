"""``python -m trainers.cli``: the ``gym-dream`` command."""

import sys

from trainers.cli.commands import main

sys.exit(main())
