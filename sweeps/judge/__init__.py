"""Judging results: tests, intervals, the ranking and its Markdown, the change between two
sweeps. Pure functions over numbers and rows: nothing here imports Ray or MLflow or writes a
file, so every statistic can be tested, and simulated, in milliseconds."""
