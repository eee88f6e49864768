"""The experiment's stages, one module each: every stage is a function of (recipe, work dir, its options)."""
