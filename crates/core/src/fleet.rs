//! A fleet declared once: one signed document in etcd that says what every cluster of the fleet
//! declares (users, databases, HBA rules, default privileges). It is made from a Pigsty inventory
//! (`all.vars` for every cluster, a cluster's own `vars` over them, as Pigsty scopes them): the
//! signing tool resolves each cluster's share and signs the shares, never the inventory itself
//! (whose other secrets — Patroni's, Grafana's… — must not reach etcd).
//!
//! The document at `{prefix}/fleet/<name>` is an envelope: the payload as the exact text that was
//! signed, the Ed25519 signature of those bytes, and the public key that made it. An instance
//! loads it only when the key is one of `pgops.fleet_trusted_keys`, the signature verifies, the
//! payload names this fleet, and its generation is newer than the one it loaded last; otherwise it
//! refuses it, changes nothing and says why. Signing needs the private key only, never PostgreSQL
//! (`pgops-fleet`); plaintext passwords are replaced by SCRAM verifiers before a document is
//! signed, so etcd never holds one.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The signed envelope stored in etcd.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Envelope {
    /// The payload's JSON, as the exact text that was signed.
    pub payload: String,
    /// Base64 Ed25519 signature of `payload`'s bytes.
    pub signature: String,
    /// Base64 public key (32 bytes) that made the signature.
    pub key: String,
}

/// What a fleet declares.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Payload {
    pub fleet: String,
    /// Each publish takes the next one; an instance loads only a newer one than it has.
    pub generation: i64,
    /// When it was signed (RFC 3339, informative).
    #[serde(default)]
    pub signed_at: String,
    /// Each cluster's share, resolved from the inventory (passwords as SCRAM verifiers).
    pub clusters: std::collections::BTreeMap<String, crate::pigsty::Cluster>,
}

/// The payload of fleet `fleet` from a Pigsty inventory: every cluster resolved as pgops
/// resolves it, plaintext passwords replaced by SCRAM-SHA-256 verifiers. Returns it and how many
/// passwords were hashed.
///
/// `salt_seed` (the signing key) makes each salt a secret function of the role and its password:
/// the same password gives the same verifier at every publish (nothing to apply again), a new
/// one a new verifier, and no two roles share a salt.
pub fn payload_from_inventory(
    fleet: &str,
    generation: i64,
    signed_at: &str,
    inventory: &Value,
    salt_seed: &[u8],
) -> Result<(Payload, usize)> {
    check_name(fleet)?;
    let names = crate::pigsty::clusters(inventory);
    if names.is_empty() {
        return Err(Error::invalid("the inventory has no cluster (no host with a pg_cluster)"));
    }
    let mut clusters = std::collections::BTreeMap::new();
    let mut hashed = 0;
    for name in names {
        let mut c = crate::pigsty::resolve(inventory, &name).map_err(|e| e.context(format!("cluster {name}")))?;
        hashed += hash_passwords(&mut c.roles, 4096, salt_seed);
        c.ignored.clear();
        clusters.insert(name, c);
    }
    Ok((
        Payload {
            fleet: fleet.to_string(),
            generation,
            signed_at: signed_at.to_string(),
            clusters,
        },
        hashed,
    ))
}

/// Why a document was not loaded. Nothing is changed for any of them.
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    Malformed(String),
    Unsigned,
    UntrustedKey(String),
    Forged,
    OtherFleet(String),
    /// Older than (or the same generation as, with other content) the one loaded: a replay.
    NotNewer { generation: i64, loaded: i64 },
    /// No key is trusted (`pgops.fleet_trusted_keys` is empty or invalid).
    NoTrustedKeys,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Malformed(e) => write!(f, "malformed document: {e}"),
            Refusal::Unsigned => write!(f, "unsigned document (no signature or key)"),
            Refusal::UntrustedKey(k) => write!(f, "signed by key {k}, which is not in pgops.fleet_trusted_keys"),
            Refusal::Forged => write!(f, "the signature does not verify: the payload was changed after signing, or signed by another key"),
            Refusal::OtherFleet(n) => write!(f, "the payload declares fleet \"{n}\", not this one"),
            Refusal::NotNewer { generation, loaded } => write!(
                f,
                "generation {generation} is not newer than generation {loaded}, loaded already (a replayed or reused generation)"
            ),
            Refusal::NoTrustedKeys => write!(f, "pgops.fleet_trusted_keys names no valid key: nothing can be trusted"),
        }
    }
}

/// The etcd key of fleet `name` under `prefix` (`/pg` → `/pg/fleet/<name>`).
pub fn key(prefix: &str, name: &str) -> String {
    format!("{}/fleet/{name}", prefix.trim_end_matches('/'))
}

/// A fleet name: what can be part of a key and a row (letters, digits, `-`, `_`, `.`).
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 63
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(Error::invalid(format!(
            "fleet name \"{name}\" is not valid: use 1 to 63 letters, digits, '-', '_' or '.'"
        )));
    }
    Ok(())
}

/// A new Ed25519 key pair: (PKCS#8 private key, base64 public key).
pub fn keygen() -> Result<(Vec<u8>, String)> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| Error::internal("cannot generate an Ed25519 key"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| Error::internal("generated key unreadable"))?;
    Ok((pkcs8.as_ref().to_vec(), B64.encode(pair.public_key().as_ref())))
}

/// The base64 public key of a PKCS#8 private key.
pub fn public_key(pkcs8: &[u8]) -> Result<String> {
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
        .map_err(|_| Error::invalid("not an Ed25519 private key in PKCS#8 (make one with pgops-fleet keygen)"))?;
    Ok(B64.encode(pair.public_key().as_ref()))
}

/// Signs `payload` with the PKCS#8 private key: the envelope as JSON text.
pub fn sign(pkcs8: &[u8], payload: &Payload) -> Result<String> {
    check_name(&payload.fleet)?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
        .map_err(|_| Error::invalid("not an Ed25519 private key in PKCS#8 (make one with pgops-fleet keygen)"))?;
    let text = serde_json::to_string(payload).map_err(|e| Error::internal(e.to_string()))?;
    let sig = pair.sign(text.as_bytes());
    let env = Envelope {
        payload: text,
        signature: B64.encode(sig.as_ref()),
        key: B64.encode(pair.public_key().as_ref()),
    };
    serde_json::to_string(&env).map_err(|e| Error::internal(e.to_string()))
}

/// `pgops.fleet_trusted_keys`: base64 public keys separated by commas or spaces. Returns the
/// valid ones and an error for each that is not a 32-byte key.
pub fn trusted_keys(setting: &str) -> (Vec<String>, Vec<String>) {
    let mut ok = vec![];
    let mut bad = vec![];
    for k in setting.split([',', ' ', '\n', '\t']).map(str::trim).filter(|k| !k.is_empty()) {
        match B64.decode(k) {
            Ok(b) if b.len() == 32 => ok.push(B64.encode(b)),
            _ => bad.push(format!("\"{k}\" is not a base64 Ed25519 public key (32 bytes)")),
        }
    }
    (ok, bad)
}

/// A loaded document's digest (of the payload text), to tell a reused generation.
pub fn digest(payload_text: &str) -> String {
    Sha256::digest(payload_text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// What a verified document gives.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    pub payload: Payload,
    pub sha256: String,
    pub key: String,
    /// Its generation is the one loaded already, with the same content: nothing to load.
    pub already_loaded: bool,
}

/// Checks a document read from etcd (untrusted bytes) for fleet `fleet`: trusted key, valid
/// signature, this fleet, newer than `loaded` (generation, digest) if any.
pub fn verify(doc: &[u8], trusted: &[String], fleet: &str, loaded: Option<(i64, &str)>) -> std::result::Result<Verified, Refusal> {
    if trusted.is_empty() {
        return Err(Refusal::NoTrustedKeys);
    }
    let v: Value = serde_json::from_slice(doc).map_err(|e| Refusal::Malformed(format!("not JSON: {e}")))?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let Some(payload_text) = text("payload") else {
        return Err(Refusal::Malformed("no payload".into()));
    };
    let (Some(sig), Some(key)) = (text("signature"), text("key")) else {
        return Err(Refusal::Unsigned);
    };
    let key_bytes = B64.decode(key).map_err(|_| Refusal::Malformed("the key is not base64".into()))?;
    let key_norm = B64.encode(&key_bytes);
    if !trusted.contains(&key_norm) {
        return Err(Refusal::UntrustedKey(key_norm));
    }
    let sig_bytes = B64.decode(sig).map_err(|_| Refusal::Forged)?;
    UnparsedPublicKey::new(&ED25519, &key_bytes)
        .verify(payload_text.as_bytes(), &sig_bytes)
        .map_err(|_| Refusal::Forged)?;
    let payload: Payload =
        serde_json::from_str(payload_text).map_err(|e| Refusal::Malformed(format!("signed payload: {e}")))?;
    if payload.fleet != fleet {
        return Err(Refusal::OtherFleet(payload.fleet));
    }
    let sha256 = digest(payload_text);
    let mut already_loaded = false;
    if let Some((gen_loaded, sha_loaded)) = loaded {
        if payload.generation < gen_loaded || (payload.generation == gen_loaded && sha256 != sha_loaded) {
            return Err(Refusal::NotNewer {
                generation: payload.generation,
                loaded: gen_loaded,
            });
        }
        already_loaded = payload.generation == gen_loaded;
    }
    Ok(Verified {
        payload,
        sha256,
        key: key_norm,
        already_loaded,
    })
}

/// Replaces every plaintext `password` of the roles (Pigsty user objects) by its SCRAM-SHA-256
/// verifier (a verifier or an md5 hash is kept), so the signed document holds no plaintext; the
/// salt is derived from `salt_seed`, the role and the password. Returns how many were replaced.
pub fn hash_passwords(roles: &mut [Value], iterations: u32, salt_seed: &[u8]) -> usize {
    let mut n = 0;
    for u in roles.iter_mut() {
        let name = u.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        if let Some(Value::String(p)) = u.get_mut("password")
            && !crate::roles::scram::is_verifier(p)
            && !crate::roles::scram::is_md5_verifier(p)
        {
            let mut h = Sha256::new();
            for part in [salt_seed, name.as_bytes(), p.as_bytes()] {
                h.update((part.len() as u64).to_be_bytes());
                h.update(part);
            }
            let salt = h.finalize();
            *p = crate::roles::scram::build(p, &salt[..16], iterations);
            n += 1;
        }
    }
    n
}

/// Where one instance stands with the fleet, as its etcd document reports it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct MemberFleet {
    pub fleet: String,
    /// The generation loaded (on a replica: the one its primary loaded, replicated).
    pub generation: Option<i64>,
    /// The newest generation seen in etcd.
    pub seen_generation: Option<i64>,
    /// converged / held / failed / refused.
    pub state: String,
    /// Rows waiting (reconcile held or failed) and declarations not loaded (conflicts).
    pub held: i64,
    pub last_error: Option<String>,
}

/// An instance's fleet state from what it knows. `refused`/`failed`: the last document seen was
/// refused or failed to load. `reconcile`: (capability, policy, state) for roles, databases, hba.
pub fn member_state(
    loaded: Option<i64>,
    seen: Option<i64>,
    refused: Option<&str>,
    failed: Option<&str>,
    conflicts: i64,
    reconcile: &[(String, String, String, i64)],
    replica: bool,
) -> (String, i64, Option<String>) {
    if let Some(r) = refused {
        return ("refused".into(), 0, Some(r.to_string()));
    }
    if let Some(e) = failed {
        return ("failed".into(), 0, Some(e.to_string()));
    }
    if seen.is_none() {
        return ("held".into(), 0, Some("no fleet document in etcd yet".into()));
    }
    if loaded < seen {
        let why = if replica {
            "a replica: waits for its primary to load the newest generation"
        } else {
            "the newest generation is not loaded yet"
        };
        return ("held".into(), 0, Some(why.into()));
    }
    let mut held = conflicts;
    let mut why = (conflicts > 0).then(|| format!("{conflicts} declaration(s) conflict with rows declared locally (kept)"));
    if replica {
        return (if held > 0 { "held" } else { "converged" }.into(), held, why);
    }
    for (cap, policy, state, n) in reconcile {
        match (policy.as_str(), state.as_str()) {
            (_, "failed") => return ("failed".into(), held + n, Some(format!("reconcile of {cap} failed"))),
            ("off", _) => {
                why.get_or_insert_with(|| format!("pgops.reconcile_{cap} is off: the declared {cap} are loaded, not applied"));
                held = held.max(1);
            }
            (_, "converged") => {}
            (_, "pending") => {
                held = held.max(1);
                why.get_or_insert_with(|| format!("reconcile of {cap} has not run since this generation was loaded"));
            }
            _ => {
                held += n;
                why.get_or_insert_with(|| format!("reconcile of {cap} holds {n} row(s)"));
            }
        }
    }
    (if held > 0 { "held" } else { "converged" }.into(), held, why)
}

/// One instance as the fleet sees it (from its etcd document).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MemberRow {
    pub cluster: String,
    pub instance: String,
    pub role: String,
    pub fleet: Option<String>,
    pub generation: Option<i64>,
    pub seen_generation: Option<i64>,
    pub state: Option<String>,
    pub held: Option<i64>,
    pub last_error: Option<String>,
    pub updated_at: Option<String>,
}

/// The instances of fleet `fleet` from a read of every key under `prefix` (etcd keys and values,
/// untrusted): each `{prefix}/<cluster>/pgops/members/<instance>` document that names the fleet,
/// by cluster and instance. Documents that do not parse are left out.
pub fn members(prefix: &str, kvs: &[(String, Vec<u8>)], fleet: &str) -> Vec<MemberRow> {
    let base = format!("{}/", prefix.trim_end_matches('/'));
    let mut out = vec![];
    for (k, v) in kvs {
        let Some(rest) = k.strip_prefix(&base) else { continue };
        let parts: Vec<&str> = rest.split('/').collect();
        let [cluster, "pgops", "members", instance] = parts.as_slice() else { continue };
        let Ok(doc) = serde_json::from_slice::<Value>(v) else { continue };
        let f = doc.get("fleet").cloned().unwrap_or(Value::Null);
        if f.get("fleet").and_then(Value::as_str) != Some(fleet) {
            continue;
        }
        let s = |x: &Value, k: &str| x.get(k).and_then(Value::as_str).map(str::to_string);
        out.push(MemberRow {
            cluster: cluster.to_string(),
            instance: instance.to_string(),
            role: s(&doc, "role").unwrap_or_default(),
            fleet: s(&f, "fleet"),
            generation: f.get("generation").and_then(Value::as_i64),
            seen_generation: f.get("seen_generation").and_then(Value::as_i64),
            state: s(&f, "state"),
            held: f.get("held").and_then(Value::as_i64),
            last_error: s(&f, "last_error"),
            updated_at: s(&doc, "updated_at"),
        });
    }
    out.sort_by(|a, b| (&a.cluster, &a.instance).cmp(&(&b.cluster, &b.instance)));
    out
}

/// Every one of `rows` runs `generation` and says converged, and there are at least `expected`.
pub fn converged(rows: &[MemberRow], generation: i64, expected: usize) -> bool {
    rows.len() >= expected
        && rows
            .iter()
            .all(|r| r.generation == Some(generation) && r.state.as_deref() == Some("converged"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inv() -> Value {
        json!({"all": {"vars": {"pg_users": [{"name": "dbuser_app", "password": "Secret.1"}]},
                       "children": {"pg-a": {"hosts": {"10.0.0.1": {"pg_seq": 1, "pg_role": "primary"}}, "vars": {"pg_cluster": "pg-a"}}}}})
    }

    fn payload(generation: i64) -> Payload {
        payload_from_inventory("prod", generation, "", &inv(), b"seed").unwrap().0
    }

    #[test]
    fn a_signed_document_verifies_with_its_key_only() {
        let (sk, pk) = keygen().unwrap();
        assert_eq!(public_key(&sk).unwrap(), pk);
        let doc = sign(&sk, &payload(3)).unwrap();
        let v = verify(doc.as_bytes(), std::slice::from_ref(&pk), "prod", None).unwrap();
        assert_eq!(v.payload.generation, 3);
        assert!(!v.already_loaded);
        let (_, other) = keygen().unwrap();
        assert!(matches!(verify(doc.as_bytes(), &[other], "prod", None), Err(Refusal::UntrustedKey(_))));
        assert_eq!(verify(doc.as_bytes(), &[], "prod", None), Err(Refusal::NoTrustedKeys));
    }

    #[test]
    fn a_changed_payload_or_a_swapped_signature_is_forged() {
        let (sk, pk) = keygen().unwrap();
        let doc = sign(&sk, &payload(3)).unwrap();
        let mut env: Envelope = serde_json::from_str(&doc).unwrap();
        env.payload = env.payload.replace("\"generation\":3", "\"generation\":4");
        let forged = serde_json::to_string(&env).unwrap();
        assert_eq!(verify(forged.as_bytes(), std::slice::from_ref(&pk), "prod", None), Err(Refusal::Forged));
        // A real signature of another payload, by the trusted key, does not fit this one.
        let other: Envelope = serde_json::from_str(&sign(&sk, &payload(9)).unwrap()).unwrap();
        let mut env2: Envelope = serde_json::from_str(&doc).unwrap();
        env2.signature = other.signature;
        let swapped = serde_json::to_string(&env2).unwrap();
        assert_eq!(verify(swapped.as_bytes(), std::slice::from_ref(&pk), "prod", None), Err(Refusal::Forged));
        // An attacker's own key, announced in the envelope, is not trusted.
        let (evil_sk, _) = keygen().unwrap();
        let evil = sign(&evil_sk, &payload(99)).unwrap();
        assert!(matches!(verify(evil.as_bytes(), &[pk], "prod", None), Err(Refusal::UntrustedKey(_))));
    }

    #[test]
    fn unsigned_malformed_and_other_fleets_are_refused() {
        let (sk, pk) = keygen().unwrap();
        let t = std::slice::from_ref(&pk);
        let unsigned = json!({"payload": serde_json::to_string(&payload(1)).unwrap()}).to_string();
        assert_eq!(verify(unsigned.as_bytes(), t, "prod", None), Err(Refusal::Unsigned));
        assert!(matches!(verify(b"{not json", t, "prod", None), Err(Refusal::Malformed(_))));
        assert!(matches!(verify(b"{}", t, "prod", None), Err(Refusal::Malformed(_))));
        let other = sign(&sk, &Payload { fleet: "staging".into(), ..payload(1) }).unwrap();
        assert_eq!(verify(other.as_bytes(), t, "prod", None), Err(Refusal::OtherFleet("staging".into())));
        // Signed, but not a payload's shape: refused as malformed.
        let pair = Ed25519KeyPair::from_pkcs8(&sk).unwrap();
        let text = r#"{"fleet": "prod", "generation": 1, "clusters": "nope"}"#;
        let odd = serde_json::to_string(&Envelope {
            payload: text.into(),
            signature: B64.encode(pair.sign(text.as_bytes()).as_ref()),
            key: pk.clone(),
        })
        .unwrap();
        assert!(matches!(verify(odd.as_bytes(), t, "prod", None), Err(Refusal::Malformed(_))));
    }

    #[test]
    fn an_older_or_reused_generation_is_a_replay() {
        let (sk, pk) = keygen().unwrap();
        let t = std::slice::from_ref(&pk);
        let doc5 = sign(&sk, &payload(5)).unwrap();
        let v5 = verify(doc5.as_bytes(), t, "prod", None).unwrap();
        let doc4 = sign(&sk, &payload(4)).unwrap();
        assert_eq!(
            verify(doc4.as_bytes(), t, "prod", Some((5, &v5.sha256))),
            Err(Refusal::NotNewer { generation: 4, loaded: 5 })
        );
        assert!(verify(doc5.as_bytes(), t, "prod", Some((5, &v5.sha256))).unwrap().already_loaded);
        let mut changed = payload(5);
        changed.clusters.get_mut("pg-a").unwrap().roles.push(json!({"name": "another"}));
        let reused = sign(&sk, &changed).unwrap();
        assert!(matches!(verify(reused.as_bytes(), t, "prod", Some((5, &v5.sha256))), Err(Refusal::NotNewer { .. })));
        let doc6 = sign(&sk, &payload(6)).unwrap();
        assert!(!verify(doc6.as_bytes(), t, "prod", Some((5, &v5.sha256))).unwrap().already_loaded);
    }

    #[test]
    fn trusted_keys_are_read_from_the_setting_and_bad_ones_named() {
        let (_, pk) = keygen().unwrap();
        let (ok, bad) = trusted_keys(&format!(" {pk}, nonsense ,QUJD"));
        assert_eq!(ok, vec![pk]);
        assert_eq!(bad.len(), 2);
        assert!(bad[0].contains("nonsense"));
    }

    #[test]
    fn the_payload_holds_each_clusters_share_with_no_plaintext_and_no_inventory_secret() {
        let mut i = inv();
        i["all"]["vars"]["patroni_password"] = json!("Patroni.Secret");
        i["all"]["vars"]["pg_admin_password"] = json!("Admin.Secret");
        let v = crate::roles::scram::new_verifier("other", 4096).unwrap();
        i["all"]["children"]["pg-a"]["vars"]["pg_users"] = json!([{"name": "u2", "password": v},
            {"name": "u3", "password": "md5d41d8cd98f00b204e9800998ecf8427e"}, {"name": "u4", "password": "Secret.1"}]);
        let (p, hashed) = payload_from_inventory("prod", 1, "", &i, b"seed").unwrap();
        let (again, _) = payload_from_inventory("prod", 2, "", &i, b"seed").unwrap();
        assert_eq!(again.clusters, p.clusters, "the same passwords give the same verifiers");
        let (other, _) = payload_from_inventory("prod", 2, "", &i, b"other key").unwrap();
        assert_ne!(other.clusters, p.clusters, "another signing key, other salts");
        assert!(hashed >= 2, "u4 and the admin's password at least: {hashed}");
        let text = serde_json::to_string(&p).unwrap();
        for secret in ["Secret.1", "Patroni.Secret", "Admin.Secret"] {
            assert!(!text.contains(secret), "{secret} is in the payload");
        }
        let roles = &p.clusters["pg-a"].roles;
        let pw = |n: &str| roles.iter().find(|r| r["name"] == n).unwrap()["password"].as_str().unwrap().to_string();
        assert!(crate::roles::scram::matches(&pw("u4"), "Secret.1"));
        assert_eq!(pw("u2"), v, "a verifier is kept");
        assert!(pw("u3").starts_with("md5"), "an md5 hash is kept");
        assert!(crate::roles::scram::matches(&pw("dbuser_dba"), "Admin.Secret"), "pg_admin_password, hashed");
        assert!(payload_from_inventory("prod", 1, "", &json!({"all": {}}), b"seed").is_err());
    }

    #[test]
    fn the_fleet_is_read_from_every_member_document() {
        let doc = |role: &str, fleet: &str, g: i64, state: &str| {
            json!({"role": role, "updated_at": "t", "fleet": {"fleet": fleet, "generation": g, "seen_generation": g, "state": state, "held": 0}})
                .to_string()
                .into_bytes()
        };
        let kvs = vec![
            ("/pg/pg-b/pgops/members/pg-b-1".to_string(), doc("primary", "prod", 2, "converged")),
            ("/pg/pg-a/pgops/members/pg-a-2".to_string(), doc("replica", "prod", 2, "converged")),
            ("/pg/pg-a/pgops/members/pg-a-1".to_string(), doc("primary", "prod", 2, "converged")),
            ("/pg/pg-c/pgops/members/pg-c-1".to_string(), doc("primary", "staging", 2, "converged")),
            ("/pg/pg-a/leader".to_string(), b"pg-a-1".to_vec()),
            ("/pg/pg-a/pgops/members/bad".to_string(), b"{".to_vec()),
            ("/pg/fleet/prod".to_string(), b"{}".to_vec()),
        ];
        let rows = members("/pg/", &kvs, "prod");
        assert_eq!(
            rows.iter().map(|r| format!("{}/{}", r.cluster, r.instance)).collect::<Vec<_>>(),
            ["pg-a/pg-a-1", "pg-a/pg-a-2", "pg-b/pg-b-1"]
        );
        assert!(converged(&rows, 2, 3));
        assert!(!converged(&rows, 2, 4), "a member not reporting yet");
        assert!(!converged(&rows, 3, 3));
        let mut held = rows.clone();
        held[1].state = Some("held".into());
        assert!(!converged(&held, 2, 3));
    }

    #[test]
    fn names_and_keys() {
        assert_eq!(key("/pg/", "prod"), "/pg/fleet/prod");
        assert!(check_name("prod-eu.1").is_ok());
        for bad in ["", "a/b", "x y", "ä"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_member_state_from_what_it_knows() {
        let rec = |r: &str, d: &str| {
            vec![
                ("roles".to_string(), "safe".to_string(), r.to_string(), 0),
                ("databases".to_string(), "safe".to_string(), d.to_string(), 2),
                ("hba".to_string(), "all".to_string(), "converged".to_string(), 0),
            ]
        };
        let ok = rec("converged", "converged");
        assert_eq!(member_state(Some(3), Some(3), None, None, 0, &ok, false).0, "converged");
        assert_eq!(member_state(Some(2), Some(3), None, None, 0, &ok, false).0, "held");
        assert_eq!(member_state(Some(3), Some(4), Some("forged"), None, 0, &ok, false).0, "refused");
        assert_eq!(member_state(Some(3), Some(3), None, Some("x"), 0, &ok, false).0, "failed");
        let (s, held, why) = member_state(Some(3), Some(3), None, None, 0, &rec("converged", "held"), false);
        assert_eq!((s.as_str(), held), ("held", 2));
        assert!(why.unwrap().contains("databases"));
        assert_eq!(member_state(Some(3), Some(3), None, None, 0, &rec("failed", "converged"), false).0, "failed");
        let (s, held, _) = member_state(Some(3), Some(3), None, None, 1, &ok, false);
        assert_eq!((s.as_str(), held), ("held", 1));
        let (s, _, why) = member_state(Some(3), Some(3), None, None, 0, &rec("converged", "pending"), false);
        assert_eq!(s, "held", "a capability that has not run since the load");
        assert!(why.unwrap().contains("not run since"));
        let off = vec![("roles".to_string(), "off".to_string(), "off".to_string(), 0)];
        assert_eq!(member_state(Some(3), Some(3), None, None, 0, &off, false).0, "held");
        assert_eq!(member_state(Some(3), Some(3), None, None, 0, &[], true).0, "converged", "a replica that has its primary's load");
        assert_eq!(member_state(Some(2), Some(3), None, None, 0, &[], true).0, "held");
    }
}
