"""Model providers: the deterministic offline model and real chat models, behind one interface."""
