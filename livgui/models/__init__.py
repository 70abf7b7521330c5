"""livgui.models."""
