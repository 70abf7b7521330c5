"""livgui.inference."""
