"""``python -m l1flow``: the ``l1flow`` command."""

import sys

from l1flow.cli.main import main

sys.exit(main())
