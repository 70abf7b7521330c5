"""livgui.ui."""
