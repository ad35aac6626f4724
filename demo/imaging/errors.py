"""Why a picture can't be used, for a person: every refusal the imaging layer raises."""


class ImageInputError(ValueError):
    """The input can't be turned into a model input; the message says why, for a person."""


class UnsupportedImageError(ImageInputError):
    """Not an image, or a format outside the allowlist (HTTP 415)."""


class EmptyImageError(ImageInputError):
    """Nothing drawn / a blank picture: the app says 'draw a digit' instead of guessing."""


class TooSmallImageError(ImageInputError):
    """A photo too small, or too thin for its length, to hold a digit or a garment the analysis could find."""


class UnexpectedImageError(ImageInputError):
    """Preparing the picture failed in a way the code does not foresee (a bug, logged with its
    traceback): the person still gets a plain answer, not a server error."""


class ServerBusyError(ImageInputError):
    """Other requests' images hold the decode budget right now: try again (HTTP 503)."""
