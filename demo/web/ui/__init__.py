"""The Gradio UI, torch-free: page.py lays out the tabs; one module per tab (images: Digits and
Fashion, hello, lessons, training), spiral_chart draws the spiral lesson's picture, common holds
what they share."""
from demo.web.ui.page import APP_READY_JS, app_css, build_ui

__all__ = ["APP_READY_JS", "app_css", "build_ui"]
