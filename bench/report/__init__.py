"""Reports built from the store only: the terminal summary, the Markdown and the self-contained HTML report.

`parts` builds everything a report says once from a run's records; `write` prints and writes it; `sections/`
holds one module per section; `tables`, `summary`, `captions`, `model_figures` and `markdown` are what they are
made of.
"""
