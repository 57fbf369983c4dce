"""``python -m statemeter``: the command line (see ``statemeter.cli``)."""

import sys

from statemeter.cli import main

sys.exit(main())
