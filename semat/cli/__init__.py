"""The ``semat`` command line: one module per subcommand, wired up in :mod:`semat.cli.main`."""
