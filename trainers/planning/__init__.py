"""Acting by planning in the dream: the CEM planner and the PlaNet loop that collects with it."""
