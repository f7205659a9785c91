"""The staff dashboard (SPEC section 6)."""
