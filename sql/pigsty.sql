-- pgops.load_pigsty(): superusers only; it carries plaintext passwords (the inventory's), so a
-- failed call never has its statement logged (as load_roles).
REVOKE ALL ON FUNCTION pgops.load_pigsty(text, text) FROM PUBLIC;
ALTER FUNCTION pgops.load_pigsty(text, text) SET log_min_error_statement = panic;
COMMENT ON FUNCTION pgops.load_pigsty(text, text) IS
    'Loads one cluster of a Pigsty inventory (YAML text): roles, default privileges, databases, HBA rules and aliases, resolved as Pigsty resolves them; returns what was loaded and what was left out, and why';
