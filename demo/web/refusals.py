"""A user's input refused: one plain line in the server log (no traceback), and the message the page
shows. Gradio's own checks of a component's value (demo.web.patches) and the app's handlers
(demo.web.ui) refuse through this one function."""
import logging

LOG = logging.getLogger("tinyzoo.ui")  # the page's log, no handler: Python prints a warning as one plain line


def refused(error: Exception | str) -> str:
    """-> the message for the page, once its line is in the log."""
    LOG.warning("refused input: %s", error)
    return str(error)
