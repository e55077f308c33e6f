"""The ``zetta`` command line."""
