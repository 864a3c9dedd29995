//! `pgops-fleet`: make a signing key, sign a fleet document (from a Pigsty inventory, YAML or
//! JSON), publish it to etcd with the next generation, and show which cluster runs which
//! generation and whether it converged. Built on pgops-core: a DBA's laptop needs no PostgreSQL.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use clap::{Args, Parser, Subcommand};
use pgops_core::etcd::client::{Client, Config};
use pgops_core::fleet;

#[derive(Parser)]
#[command(name = "pgops-fleet", version, about = "Sign and publish a pgops fleet document; watch the fleet converge")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make an Ed25519 key pair: the private key goes to FILE (mode 0600), the public key (for
    /// pgops.fleet_trusted_keys) is printed.
    Keygen {
        /// Where the private key is written (it must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public key of a private key.
    Pubkey {
        #[arg(long)]
        key: PathBuf,
    },
    /// Sign an inventory as generation N of a fleet; prints the document.
    Sign {
        #[command(flatten)]
        doc: DocArgs,
        #[arg(long)]
        generation: i64,
    },
    /// Sign an inventory with the next generation and write it to etcd (only if nobody published
    /// meanwhile); prints the generation.
    Publish {
        #[command(flatten)]
        doc: DocArgs,
        #[command(flatten)]
        etcd: EtcdArgs,
    },
    /// Show each instance of the fleet: cluster, instance, role, generation, state.
    Status {
        /// The fleet's name.
        #[arg(long)]
        fleet: String,
        #[command(flatten)]
        etcd: EtcdArgs,
        /// Wait (at most this many seconds) until every instance runs the newest generation and
        /// converged; exit 1 if they do not.
        #[arg(long)]
        wait: Option<u64>,
        /// With --wait: how many instances must report (the fleet's size).
        #[arg(long, default_value_t = 1)]
        members: usize,
        /// Print nothing but the outcome line.
        #[arg(long)]
        quiet: bool,
    },
}

#[derive(Args)]
struct DocArgs {
    /// The private key (from keygen).
    #[arg(long)]
    key: PathBuf,
    /// The fleet's name (the document's key is <prefix>/fleet/<name>).
    #[arg(long)]
    fleet: String,
    /// A Pigsty inventory (YAML or JSON): all.vars for every cluster, each cluster's vars over them.
    inventory: PathBuf,
}

#[derive(Args)]
struct EtcdArgs {
    /// etcd client URLs, comma-separated.
    #[arg(long, default_value = "http://127.0.0.1:2379")]
    endpoints: String,
    /// The key prefix (pgops.etcd_prefix).
    #[arg(long, default_value = "/pg")]
    prefix: String,
    /// etcd user, with --password-file.
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// PEM CA for https:// endpoints.
    #[arg(long)]
    cacert: Option<String>,
    #[arg(long, default_value_t = 5)]
    timeout_s: u64,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("pgops-fleet: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

fn read_key(path: &PathBuf) -> Result<Vec<u8>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the key {}: {e}", path.display()))?;
    B64.decode(text.trim())
        .map_err(|_| format!("{} is not a key made by pgops-fleet keygen (base64 PKCS#8)", path.display()))
}

fn document(d: &DocArgs, generation: i64) -> Result<String, String> {
    fleet::check_name(&d.fleet).map_err(|e| e.message)?;
    let key = read_key(&d.key)?;
    let text = std::fs::read_to_string(&d.inventory)
        .map_err(|e| format!("cannot read the inventory {}: {e}", d.inventory.display()))?;
    let inventory = pgops_core::pigsty::yaml_to_json(&text)
        .map_err(|e| format!("{}: {}", d.inventory.display(), e.message))?;
    // Every cluster resolved here as pgops resolves it (a mistake is found now, not by each
    // instance after the publish); only the shares are signed, never the inventory's other secrets.
    let signed_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (payload, hashed) = fleet::payload_from_inventory(&d.fleet, generation, &signed_at, &inventory, &key)
        .map_err(|e| format!("{}: {}", d.inventory.display(), e.message))?;
    if hashed > 0 {
        eprintln!("pgops-fleet: {hashed} plaintext password(s) replaced by their SCRAM-SHA-256 verifiers");
    }
    fleet::sign(&key, &payload).map_err(|e| e.message)
}

fn client(e: &EtcdArgs) -> Result<Client, String> {
    let password = match &e.password_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|err| format!("cannot read {}: {err}", p.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        ),
        None => None,
    };
    Client::new(Config {
        endpoints: e.endpoints.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        timeout: Duration::from_secs(e.timeout_s.max(1)),
        username: e.user.clone(),
        password,
        ca_file: e.cacert.clone(),
        cert_file: None,
        key_file: None,
    })
    .map_err(|err| err.to_string())
}

/// The generation and mod revision of the document now in etcd (0, 0: none).
fn current(c: &mut Client, key: &str) -> Result<(i64, i64), String> {
    let kvs = c.range(key.as_bytes(), None, 1).map_err(|e| e.to_string())?;
    let Some(kv) = kvs.into_iter().next() else { return Ok((0, 0)) };
    let generation = serde_json::from_slice::<serde_json::Value>(&kv.value)
        .ok()
        .and_then(|v| v.get("payload").and_then(|p| p.as_str()).map(str::to_string))
        .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
        .and_then(|p| p.get("generation").and_then(serde_json::Value::as_i64))
        .unwrap_or(0);
    Ok((generation, kv.mod_revision))
}

/// Every key under the prefix (each instance's document among them), as (key, value).
fn everything(c: &mut Client, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let prefix = format!("{}/", prefix.trim_end_matches('/'));
    Ok(c.range_prefix(prefix.as_bytes(), 100_000)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|kv| (String::from_utf8_lossy(&kv.key).into_owned(), kv.value))
        .collect())
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Keygen { out } => {
            let (sk, pk) = fleet::keygen().map_err(|e| e.message)?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&out)
                .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
            writeln!(f, "{}", B64.encode(sk)).map_err(|e| e.to_string())?;
            println!("{pk}");
        }
        Command::Pubkey { key } => println!("{}", fleet::public_key(&read_key(&key)?).map_err(|e| e.message)?),
        Command::Sign { doc, generation } => {
            if generation < 1 {
                return Err("--generation must be 1 or more".into());
            }
            println!("{}", document(&doc, generation)?);
        }
        Command::Publish { doc, etcd } => {
            let mut c = client(&etcd)?;
            let key = fleet::key(&etcd.prefix, &doc.fleet);
            let (generation, revision) = current(&mut c, &key)?;
            // The next generation is newer than the document in etcd and than every generation
            // an instance reports (the document there may be one that was refused).
            let kvs = everything(&mut c, &etcd.prefix)?;
            let reported = fleet::members(&etcd.prefix, &kvs, &doc.fleet)
                .iter()
                .flat_map(|r| [r.generation, r.seen_generation])
                .flatten()
                .max()
                .unwrap_or(0);
            let next = generation
                .max(reported)
                .checked_add(1)
                .ok_or_else(|| format!("generation {} cannot be followed (the largest number): start a new fleet name", generation.max(reported)))?;
            let text = document(&doc, next)?;
            match c.put_if_unchanged(key.as_bytes(), text.as_bytes(), revision).map_err(|e| e.to_string())? {
                Some(rev) => println!("published fleet {} generation {next} at {key} (etcd revision {rev})", doc.fleet),
                None => {
                    return Err(format!(
                        "{key} changed while this publish signed generation {next} (another publish?): nothing written; run it again"
                    ));
                }
            }
        }
        Command::Status {
            fleet: name,
            etcd,
            wait,
            members,
            quiet,
        } => {
            let mut c = client(&etcd)?;
            let key = fleet::key(&etcd.prefix, &name);
            let deadline = wait.map(|w| Instant::now() + Duration::from_secs(w));
            loop {
                let (generation, _) = current(&mut c, &key)?;
                let kvs = everything(&mut c, &etcd.prefix)?;
                let rows = fleet::members(&etcd.prefix, &kvs, &name);
                let done = generation > 0 && fleet::converged(&rows, generation, members);
                let waiting = deadline.is_some_and(|d| Instant::now() < d) && !done;
                if !waiting {
                    if !quiet {
                        println!("fleet {name}: generation {generation} published");
                        println!("{:<16} {:<20} {:<8} {:>10} {:>5} {:<10} {:>4}  last_error", "cluster", "instance", "role", "generation", "seen", "state", "held");
                        for r in &rows {
                            let n = |x: Option<i64>| x.map_or("-".to_string(), |v| v.to_string());
                            println!(
                                "{:<16} {:<20} {:<8} {:>10} {:>5} {:<10} {:>4}  {}",
                                r.cluster,
                                r.instance,
                                r.role,
                                n(r.generation),
                                n(r.seen_generation),
                                r.state.as_deref().unwrap_or("-"),
                                n(r.held),
                                r.last_error.as_deref().unwrap_or("")
                            );
                        }
                    }
                    let converged = rows
                        .iter()
                        .filter(|r| r.generation == Some(generation) && r.state.as_deref() == Some("converged"))
                        .count();
                    println!("{converged} of {} instance(s) converged on generation {generation}", rows.len());
                    return Ok(if wait.is_some() && !done { ExitCode::from(1) } else { ExitCode::SUCCESS });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
