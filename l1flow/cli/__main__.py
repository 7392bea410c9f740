"""``python -m l1flow.cli``: the ``l1flow`` command, as ``python -m l1flow``."""

import sys

from l1flow.cli.main import main

sys.exit(main())
