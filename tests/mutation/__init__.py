"""`make mutate`: mutmut over the security core, scored per file against EQUIVALENTS.md."""
