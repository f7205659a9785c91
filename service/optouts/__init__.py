"""Opt-outs: who said STOP (or START again), kept the moment it is acknowledged and obeyed by
every reply and every send (`store`). A leaf: the text line and the outbound sender both use it,
and it uses neither."""
