"""Orch-Mind: a privacy-first desktop AI that lives on the user's computer.

Everything the app knows how to do lives in this package and is usable without the GUI.
"""

__version__ = "0.1.0"
