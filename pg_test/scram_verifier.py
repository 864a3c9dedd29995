#!/usr/bin/env python3
"""Prints the SCRAM-SHA-256 verifier of a password, computed here, so the server never sees the
plaintext (what psql's \\password does before it sends ALTER ROLE). Standard library only.

    python3 scram_verifier.py            # asks for the password (not echoed)
    PGOPS_PASSWORD=... python3 scram_verifier.py

Then: SELECT pgops.set_password('dbuser_app', 'SCRAM-SHA-256$4096:...');
ASCII passwords are used as they are; others are NFKC-normalised (close to SASLprep, which
PostgreSQL applies; for ASCII the two agree).
"""
import base64
import getpass
import hashlib
import hmac
import os
import unicodedata

password = os.environ.get("PGOPS_PASSWORD") or getpass.getpass("password: ")
if not password.isascii():
    password = unicodedata.normalize("NFKC", password)
salt, iterations = os.urandom(16), 4096
salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
client_key = hmac.new(salted, b"Client Key", "sha256").digest()
server_key = hmac.new(salted, b"Server Key", "sha256").digest()
b64 = lambda b: base64.b64encode(b).decode()
print(f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(hashlib.sha256(client_key).digest())}:{b64(server_key)}")
