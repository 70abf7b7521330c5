"""livgui.cli."""
