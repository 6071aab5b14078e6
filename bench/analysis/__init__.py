"""Derived figures read from records, never from models: the series the figures draw, the break-even sparsity,
the finding, Pareto fronts, the engine comparison and each study's points.

Kept apart from tables and plots so the sentence a report prints and the numbers it draws come from one place.
"""
