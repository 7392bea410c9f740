"""The ``l1flow`` command: one parser, one error policy (``main.py``), one module per command group."""
