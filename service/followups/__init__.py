"""The follow-up worklist: who tried to reach a person and did not (SPEC section 6)."""
