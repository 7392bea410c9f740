"""HTML templates of the run report (package data)."""
