"""Segmentation networks (torch only), registered by name in :mod:`livgui.models.registry`.

Importing this package registers the built-in architectures; build one with
``livgui.models.registry.build(name, **hparams)``.
"""

from livgui.models import (
    attention_unet2d,  # noqa: F401  (registers "attention_unet2d")
    resunetpp2d,  # noqa: F401  (registers "resunetpp2d")
    unet2d,  # noqa: F401  (registers "unet2d")
    unet3d,  # noqa: F401  (registers "unet3d")
    unet3plus2d,  # noqa: F401  (registers "unet3plus2d")
)
