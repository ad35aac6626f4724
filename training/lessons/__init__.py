"""The course's lessons as runnable modules: `python -m training.lessons.<name>` or `tinyzoo train <id>`.
Each prints the course's numbers and saves its plots as PNG (matplotlib, headless)."""
