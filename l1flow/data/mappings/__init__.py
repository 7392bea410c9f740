"""YAML branch mappings shipped with l1flow (a package so they are installed with it)."""
