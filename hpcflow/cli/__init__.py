"""The ``hpcflow`` command line (click): thin commands over the library."""
