"""Tools plane: typed, permissioned tools, each with its own credential, scope and audit."""
