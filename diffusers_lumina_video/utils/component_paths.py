"""Where a component comes from: a local folder, or a Hub repository id that Diffusers and transformers download.

Checked before anything loads, by the converter and the V2A assembly alike.
"""

import os
import re
from pathlib import Path

from huggingface_hub.utils import validate_repo_id


_HUB_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def is_hub_repo_id(path: str | os.PathLike) -> bool:
    """True for `"owner/name"` that is not a local path: such a checkpoint is fetched from the Hub. Anything written
    like a path (`./x`, `../x`, `/x`, `~/x`) is a path."""
    text = str(path)
    looks_like_path = text.startswith((".", "/", "~")) or os.sep in text.replace("/", "", 1)
    return not looks_like_path and not Path(path).exists() and _HUB_REPO_ID.match(text) is not None


def check_component_path(name: str, path: str | os.PathLike, subfolder: str | None = None) -> None:
    """A component is a local folder (holding `subfolder`, if given) or a Hub id; checked before anything loads."""
    if is_hub_repo_id(path):
        try:
            validate_repo_id(str(path))
        except ValueError as error:
            raise ValueError(f"`{name}` {path} is not a valid Hub repository id: {error}") from None
        return
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"`{name}` {path} is neither a local folder nor a Hub repository id such as 'owner/name'."
        )
    if subfolder and not (folder / subfolder).is_dir():
        raise FileNotFoundError(
            f"`{name}` {path} has no subfolder {subfolder!r}; set `vae_subfolder` to '' if {path} is the VAE itself."
        )
