"""livgui.library."""
