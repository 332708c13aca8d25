"""Gateway plane: the only door for untrusted content (MIME parsing, scanning) and the HTTP API."""
