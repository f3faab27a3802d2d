"""The distribution's version, in a module of its own so any module can import it without
importing the package root (whose entry points import the app)."""

__version__ = "0.1.0"
