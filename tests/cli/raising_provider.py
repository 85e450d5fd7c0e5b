"""A third-party provider module that fails while it is imported (for the registry tests:
an entry point naming it is listed as broken, and breaks nothing else)."""

raise RuntimeError("acme-provider 2.0 needs a newer reconciler")
