"""Translation: the date translator (default model), number words, and the user's parallel data."""
