"""Infrastructure services that ship alongside mailspine."""
