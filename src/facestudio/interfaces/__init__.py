"""User interfaces: the `facestudio` command line (and, later, the web UI)."""
