"""Console operators: accounts (argon2id passwords), sign-in with lockout, browser sessions."""
