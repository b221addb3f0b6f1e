"""One module per CLI subcommand: ``register(subparsers)`` sets ``handler`` on its parser."""
