"""l1flow: keep Level-1 trigger ML firmware in step with the detector.

Importing the package sets the environment the toolchain needs (see
:mod:`l1flow.toolchain`), so users never export variables by hand.
"""

from l1flow.toolchain import configure_environment

configure_environment()

__version__ = "0.1.0"
