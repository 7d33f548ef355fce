"""Pure rules of keybot: roles and permissions, key format, hashing, errors. No I/O here."""
