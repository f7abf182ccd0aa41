"""World models: next-frame predictors of Melee's dynamics (SPEC section 6)."""
