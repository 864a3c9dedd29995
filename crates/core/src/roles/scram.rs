//! SCRAM-SHA-256 verifiers, computed the way PostgreSQL computes them (RFC 5802 / RFC 7677,
//! `scram_build_secret` in src/common/scram-common.c):
//!
//! `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64, 16-byte random salt.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

pub const DEFAULT_ITERATIONS: u32 = 4096;
pub const SALT_LEN: usize = 16;

/// The parts of a verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

/// True when `s` has the shape of a SCRAM-SHA-256 verifier PostgreSQL accepts.
pub fn is_verifier(s: &str) -> bool {
    parse(s).is_some()
}

/// True when `s` looks like an md5 verifier (`md5` + 32 hex digits).
pub fn is_md5_verifier(s: &str) -> bool {
    s.len() == 35 && s.starts_with("md5") && s[3..].bytes().all(|b| b.is_ascii_hexdigit())
}

pub fn parse(s: &str) -> Option<Verifier> {
    let rest = s.strip_prefix("SCRAM-SHA-256$")?;
    let (iter_salt, keys) = rest.split_once('$')?;
    let (iterations, salt) = iter_salt.split_once(':')?;
    let (stored, server) = keys.split_once(':')?;
    let v = Verifier {
        iterations: iterations.parse().ok().filter(|&i| i > 0)?,
        salt: B64.decode(salt).ok().filter(|s| !s.is_empty())?,
        stored_key: B64.decode(stored).ok().filter(|k| k.len() == 32)?,
        server_key: B64.decode(server).ok().filter(|k| k.len() == 32)?,
    };
    Some(v)
}

/// SASLprep the password as PostgreSQL does: a password that is not valid UTF-8 or fails
/// SASLprep is used as raw bytes.
fn prepare(password: &str) -> Vec<u8> {
    match stringprep::saslprep(password) {
        Ok(p) => p.into_owned().into_bytes(),
        Err(_) => password.as_bytes().to_vec(),
    }
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// The verifier for `password` with the given salt and iteration count.
pub fn build(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(&prepare(password), salt, iterations, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(&client_key);
    let server_key = hmac(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        B64.encode(salt),
        B64.encode(stored_key),
        B64.encode(server_key)
    )
}

/// A new verifier with a random salt.
pub fn new_verifier(password: &str, iterations: u32) -> crate::error::Result<String> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|e| crate::error::Error::internal(format!("no random salt available: {e}")))?;
    Ok(build(password, &salt, iterations))
}

/// True when `password` is the one `verifier` was built from.
pub fn matches(verifier: &str, password: &str) -> bool {
    parse(verifier).is_some_and(|v| build(password, &v.salt, v.iterations) == verifier)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Produced by PostgreSQL 15 for `ALTER ROLE x PASSWORD 'pencil'` and read back from
    // pg_authid; the salt is the server's random one.
    const PG_VERIFIER: &str = "SCRAM-SHA-256$4096:UI2sM1ls6CGXIkLCOeDAiA==$\
        dO4DrnzB/w1Vv4qM3OksURLDkGIBkcLLdPbJRv3F3Eg=:Rz1CrzqPfmel/Hw6aMrxbv4/vDpxeIFhgFZ2QE07f/0=";
    // The same for a non-ASCII password (exercises SASLprep).
    const PG_VERIFIER_UNICODE: &str = "SCRAM-SHA-256$4096:zF1mkq3qTDoGlZC2/0jgTQ==$\
        A0oyYRfMeegvqS7tSDQ9Pg5B9qPBJHhBmlJdGX6sNe4=:YXwWPMAHrt+LWROqfc/h4KeD/3NBeccdfPO/rPtofKU=";

    #[test]
    fn reproduces_postgres_verifiers() {
        let v = parse(PG_VERIFIER).unwrap();
        assert_eq!(v.iterations, 4096);
        assert_eq!(build("pencil", &v.salt, v.iterations), PG_VERIFIER);
        assert!(matches(PG_VERIFIER, "pencil"));
        assert!(!matches(PG_VERIFIER, "pencil "));
        assert!(matches(PG_VERIFIER_UNICODE, "pässwörd ☃"));
    }

    #[test]
    fn new_verifiers_are_salted_and_valid() {
        let a = new_verifier("s3cret", 4096).unwrap();
        let b = new_verifier("s3cret", 4096).unwrap();
        assert_ne!(a, b, "random salt");
        assert!(is_verifier(&a) && matches(&a, "s3cret") && matches(&b, "s3cret"));
        assert!(!a.contains("s3cret"));
        assert_eq!(parse(&a).unwrap().salt.len(), SALT_LEN);
        assert!(new_verifier("x", 10000).unwrap().starts_with("SCRAM-SHA-256$10000:"));
    }

    #[test]
    fn recognises_shapes() {
        assert!(!is_verifier("SCRAM-SHA-256$4096:abc$def:ghi"));
        assert!(!is_verifier("plaintext"));
        assert!(!is_verifier("SCRAM-SHA-256$0:KkEzzzx8ifuYV7a1q+Q7FA==$x:y"));
        assert!(is_md5_verifier("md5e8a48653851e28c69d0506508fb27fc5"));
        assert!(!is_md5_verifier("md5secret"));
    }
}
