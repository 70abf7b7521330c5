"""livgui.imageio."""
