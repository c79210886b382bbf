"""Errors a user of the command line sees as one clear line instead of a traceback."""


class IbmdnError(Exception):
    """Base class for every error caused by the user's input or environment (bad file, missing root)."""


class MissingRootError(IbmdnError):
    """A data or weights root, or a file expected under it, does not exist."""


class BadImageError(IbmdnError):
    """An image file that cannot be used: truncated, not an image, too small, absurdly large."""


class ChecksumError(IbmdnError):
    """A file's sha256 differs from the one recorded for it."""
