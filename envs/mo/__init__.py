"""Multi-objective environments (vector rewards, DESIGN.md section 5)."""
