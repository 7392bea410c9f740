import sys

from l1flow.service.cli import main

sys.exit(main())
