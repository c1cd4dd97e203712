"""A stand-in for Colab's ``google.colab`` package, for the simulated Colab run of the tests.

Only ``drive`` is provided. ``google`` has no ``__init__.py`` here, so it stays a namespace
package and the installed ``google.*`` packages (protobuf, ...) still import.
"""
