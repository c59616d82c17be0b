"""Moved to `diffusers_lumina_video.showcase.shape_attributes`; this path keeps older commands and imports working."""

from ..utils.moved_modules import redirect_moved_module


redirect_moved_module(__name__, "diffusers_lumina_video.showcase.shape_attributes")
