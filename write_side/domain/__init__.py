"""The orders domain: pure state (``order``), decisions (``decide``) and rules. No I/O."""
