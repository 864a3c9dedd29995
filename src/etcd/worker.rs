//! The etcd worker: a static background worker that publishes the instance's state to etcd.
//!
//! Each `pgops.etcd_interval` it reads the state in a short read-only transaction (primary or
//! replica alike), then hands the push to its I/O thread (`io.rs`) and waits for the answer in
//! slices, so SIGTERM is honoured within a second even when etcd hangs. Failures are recorded in
//! `pgops.etcd_status` and `pgops.workers`, and retried after a bounded backoff (1 s doubling,
//! at most one interval). SQL functions ask it for a push now or a read of the cluster's members
//! through counters in shared memory and SIGUSR1. On SIGTERM (clean shutdown,
//! pg_terminate_backend) it revokes its lease, so the key disappears at once, and exits with
//! status 1 (restarted after `pgops.launcher_restart_time`, except at shutdown).

use std::time::{Duration, Instant};

use pgrx::bgworkers::BackgroundWorker;
use pgrx::prelude::*;

use super::config::{self, Plan};
use super::io::{Cmd, Io, NoReply, Reply};
use super::session::Owner;
use super::state::{MemberState, retry_delay};
use super::status::{Attempt, AttemptOk};
use crate::worker::{shmem, xact};
use crate::{gucs, identity};

pub const NAME: &str = "pgops etcd";

/// Where the answer to a read of the cluster's members is left for the asking backend.
pub const MEMBERS_FILE: &str = "pg_stat_tmp/pgops.etcd-members.json";

/// How long a clean shutdown waits for the lease revocation.
const REVOKE_WAIT: Duration = Duration::from_millis(800);

/// Declares the etcd worker (registered with the postmaster while preloading).
pub fn declare(preloading: bool) {
    crate::worker::statics::declare(NAME, "pgops_etcd_main", preloading);
}

struct Worker {
    slot: usize,
    database: String,
    io: Io,
    /// The configuration in effect (None: off or invalid).
    plan: Option<Plan>,
    /// The error that keeps publishing off, if any.
    config_error: Option<String>,
    /// The last error reading pgops' own facts (logged once, not every push).
    last_pgops_error: Option<String>,
    /// The last push error logged: the same error again (a key held by another instance, an
    /// endpoint down) is not logged at every retry, only when it changes or ends.
    last_push_error: Option<String>,
    /// What was last read of Patroni's keys (logged when it changes, written to its file).
    patroni: Option<crate::patroni::View>,
    /// The last error reading Patroni's keys (logged once).
    last_patroni_error: Option<String>,
    /// Database sizes and role drift, and when they were read (costly: see collect.rs).
    slow_facts: Option<(Instant, bool, serde_json::Value)>,
    next_push: Instant,
    terminating: bool,
    /// Following the fleet document (pgops.fleet_name).
    fleet: FleetFollow,
}

/// What the etcd worker knows of the fleet document between turns.
#[derive(Default)]
struct FleetFollow {
    name: Option<String>,
    /// The mod revision of the document last checked (0: none): a document is verified and
    /// loaded once per revision (again after a failed load, or when the settings change).
    revision: i64,
    /// The newest verified generation seen.
    seen: Option<i64>,
    /// Why the document at `revision` was refused.
    refused: Option<String>,
    /// Why loading it failed.
    failed: Option<String>,
    /// The reconcile wake count after the last load committed: a capability converged on it
    /// only once a reconcile started from it.
    load_wakes: u64,
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgops_etcd_main(_arg: pg_sys::Datum) {
    let Some((slot, database)) = crate::worker::statics::start(NAME) else {
        return;
    };
    let io = match Io::start() {
        Ok(io) => io,
        Err(e) => {
            let msg = format!("cannot start the etcd I/O thread: {e}");
            server_log!("pgops etcd: {msg}");
            shmem::with_slot(slot, |s| s.record_error(&msg, xact::now()));
            exit(slot, "failed: no I/O thread");
        }
    };
    let mut me = Worker {
        slot,
        database,
        io,
        plan: None,
        config_error: None,
        last_pgops_error: None,
        last_push_error: None,
        patroni: None,
        last_patroni_error: None,
        slow_facts: None,
        next_push: Instant::now(),
        terminating: false,
        fleet: FleetFollow::default(),
    };
    me.reconfigure();
    loop {
        if BackgroundWorker::sighup_received() {
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            if gucs::database() != me.database {
                server_log!("pgops etcd: pgops.database changed; restarting to reconnect");
                me.shutdown("restarting: pgops.database changed");
            }
            me.reconfigure();
            // The trusted keys or the fleet may have changed: check the document again.
            me.fleet.revision = 0;
        }
        if me.terminating() {
            break;
        }
        me.turn();
        if me.terminating() {
            break;
        }
        let sleep = me.sleep_time();
        if !BackgroundWorker::wait_latch(Some(sleep)) {
            me.terminating = true;
            break;
        }
    }
    me.shutdown("stopped (SIGTERM)");
}

fn exit(slot: usize, state: &str) -> ! {
    crate::worker::statics::exit(slot, state)
}

fn status<R>(f: impl FnOnce(&mut super::status::EtcdStatus) -> R) -> Option<R> {
    super::board::board().map(|l| f(&mut l.exclusive()))
}

impl Worker {
    fn terminating(&mut self) -> bool {
        self.terminating |= BackgroundWorker::sigterm_received();
        self.terminating
    }

    /// Sends a command to the I/O thread and waits, at most `wait`, giving up on SIGTERM.
    fn call(&mut self, cmd: Cmd, wait: Duration) -> Result<Reply, String> {
        let mut term = self.terminating;
        let r = self.io.call(cmd, Instant::now() + wait, &mut || {
            term |= BackgroundWorker::sigterm_received();
            term
        });
        self.terminating = term;
        r.map_err(|e| match e {
            NoReply::Interrupted => "interrupted by SIGTERM".to_string(),
            NoReply::TimedOut => format!("no answer from etcd within {} ms", wait.as_millis()),
            NoReply::ThreadGone => "the etcd I/O thread is gone".to_string(),
        })
    }

    /// The longest one command may take: every endpoint timing out, and then some.
    fn wait_for(&self) -> Duration {
        let p = self.plan.as_ref();
        let per = p.map_or(Duration::from_secs(2), |p| p.client.timeout);
        let n = p.map_or(1, |p| p.client.endpoints.len()) as u32;
        // lease keepalive/grant, a read and a put, with an authentication each at worst
        per * n * 6 + Duration::from_secs(1)
    }

    /// Reads the settings (and the password file); on any change revokes the old lease and
    /// starts a new session. A file that cannot be read just now (a password being rewritten)
    /// does not stop a running session: it keeps the credentials it has and says so.
    fn reconfigure(&mut self) {
        let (cluster, instance, _) = identity::current();
        let wanted = config::plan(&gucs::etcd(), &cluster, &instance, &config::read_file);
        let (plan, error) = match wanted {
            Ok(p) => (p, None),
            Err(e) if config::is_transient(&e) && self.plan.is_some() => {
                let why = format!("{e}; publishing goes on with the credentials read before");
                let now = xact::now();
                status(|st| st.record_error(&why, now));
                if self.config_error.as_deref() != Some(why.as_str()) {
                    server_log!("pgops etcd: {why}");
                }
                self.config_error = Some(why);
                return;
            }
            Err(e) => (None, Some(e.message)),
        };
        if plan.is_some() && error.is_none() && self.plan.is_some() && self.config_error.is_some() {
            // The file is readable again.
            self.config_error = None;
        }
        if plan == self.plan && error == self.config_error {
            return;
        }
        // A rotated password alone keeps the session: no revoke, the key never blinks.
        if let (Some(old), Some(new)) = (&self.plan, &plan) {
            let mut same = old.clone();
            same.client.password = new.client.password.clone();
            if same == *new && error.is_none() {
                let cmd = Cmd::SetPassword(new.client.password.clone());
                if let Ok(Reply::Configured(Ok(()))) = self.call(cmd, Duration::from_secs(10)) {
                    server_log!("pgops etcd: the password in pgops.etcd_password_file changed; using the new one");
                    self.plan = plan;
                    return;
                }
            }
        }
        if self.plan.is_some() {
            let _ = self.call(Cmd::Revoke, self.wait_for());
        }
        let cmd = Cmd::Configure(plan.as_ref().map(|p| (p.client.clone(), p.ttl)));
        let configured = match self.call(cmd, Duration::from_secs(10)) {
            Ok(Reply::Configured(r)) => r.map_err(|e| e.to_string()),
            Ok(other) => Err(format!("unexpected reply {other:?}")),
            Err(e) => Err(e),
        };
        let now = xact::now();
        let error = error.or(configured.err());
        if let Some(e) = &error {
            server_log!("pgops etcd: publishing is off: {e}");
            shmem::with_slot(self.slot, |s| {
                s.record_error(e, now);
                s.set_state("off (configuration error)");
            });
            status(|st| {
                st.disable("off (configuration error, see last_error)");
                st.record_error(e, now);
            });
            self.plan = None;
            self.config_error = error;
            return;
        }
        self.config_error = None;
        self.plan = plan;
        match &self.plan {
            Some(p) => {
                let endpoints = p.client.endpoints.join(",");
                status(|st| {
                    st.configure(&endpoints, &p.key, &p.members_prefix, p.interval.as_secs() as i64);
                    st.set_state("starting");
                });
                shmem::with_slot(self.slot, |s| s.set_state("publishing"));
                self.next_push = Instant::now();
            }
            None => {
                status(|st| st.disable("off (pgops.etcd_endpoints is empty)"));
                shmem::with_slot(self.slot, |s| s.set_state("off (pgops.etcd_endpoints is empty)"));
            }
        }
    }

    fn turn(&mut self) {
        let (push_req, read_req, push_done, read_done) =
            status(|st| (st.push_requested, st.read_requested, st.push_done, st.read_done)).unwrap_or_default();
        if read_req > read_done {
            self.read_members(read_req);
        }
        let due = Instant::now() >= self.next_push;
        if push_req > push_done || due {
            // Patroni's keys first: this server's member name is its default instance name, so
            // the key the push goes to may follow from them.
            self.read_patroni();
            // The password file is re-read before each push: a rotated password is picked up.
            self.reconfigure();
            self.follow_fleet();
            let attempt = self.push(push_req > push_done);
            if push_req > push_done {
                status(|st| st.answer_push(push_req, &attempt));
            }
        }
    }

    fn push(&mut self, force: bool) -> Attempt {
        let at = xact::now();
        let Some(plan) = self.plan.clone() else {
            let why = self
                .config_error
                .clone()
                .unwrap_or_else(|| "publishing is off: pgops.etcd_endpoints is empty".into());
            return Attempt {
                at,
                took_us: 0,
                result: Err(why),
            };
        };
        let collect_start = Instant::now();
        let state = collect(&mut self.last_pgops_error, &mut self.slow_facts);
        let state = state.map(|mut st| {
            st.fleet = self.fleet_report();
            st
        });
        let collect_us = collect_start.elapsed().as_micros() as i64;
        let http_start = Instant::now();
        let result = state.and_then(|state| {
            let owner = Owner {
                hostname: state.hostname.clone(),
                port: state.port,
                data_directory: state.data_directory.clone(),
            };
            let value = serde_json::to_vec(&state).map_err(|e| e.to_string())?;
            let cmd = Cmd::Push {
                key: plan.key.clone(),
                value,
                digest: state.digest(),
                owner,
                force,
            };
            match self.call(cmd, self.wait_for())? {
                Reply::Pushed(r) => r.map_err(|e| e.to_string()).map(|r| AttemptOk {
                    wrote: r.wrote,
                    revision: r.revision,
                    lease: r.lease,
                    ttl: r.ttl,
                    new_lease: r.new_lease,
                    endpoint: r.endpoint,
                }),
                other => Err(format!("unexpected reply {other:?}")),
            }
        });
        let attempt = Attempt {
            at,
            took_us: http_start.elapsed().as_micros() as i64,
            result,
        };
        let failures = status(|st| {
            st.last_collect_us = collect_us;
            st.record(&attempt)
        })
        .unwrap_or(0);
        let delay = retry_delay(failures, plan.interval);
        self.next_push = Instant::now() + delay;
        let next_at = xact::now() + delay.as_micros() as i64;
        status(|st| st.next_push_at = next_at);
        shmem::with_slot(self.slot, |s| {
            s.runs += 1;
            s.last_run_at = at;
            match &attempt.result {
                Ok(_) => s.set_state("publishing"),
                Err(e) => {
                    s.record_error(e, at);
                    s.set_state("retrying (etcd push failed)");
                }
            }
        });
        if let Err(e) = &attempt.result {
            // Logged when the error changes, not at every retry (pgops.etcd_status and
            // pgops.workers show every attempt).
            if self.last_push_error.as_deref() != Some(e.as_str()) {
                server_log!(
                    "pgops etcd: push failed (attempt {failures}, next in {} s; logged again when the error changes): {e}",
                    delay.as_secs()
                );
                self.last_push_error = Some(e.clone());
            }
        } else if self.last_push_error.take().is_some() {
            server_log!("pgops etcd: pushing again to {}", plan.key);
        } else if failures == 0 && attempt.result.as_ref().is_ok_and(|o| o.new_lease) {
            server_log!(
                "pgops etcd: publishing {} with lease {}",
                plan.key,
                attempt.result.as_ref().map(|o| o.lease).unwrap_or(0)
            );
        }
        attempt
    }

    /// Reads Patroni's keys (members, leader, config) under `<namespace>/<scope>/` — reads only:
    /// they cause no revision and wake no watcher — and leaves what it found in
    /// `patroni::VIEW_FILE` when it changed.
    fn read_patroni(&mut self) {
        if self.plan.is_none() {
            return;
        }
        let (cluster, _, hostname) = identity::current();
        let read = crate::patroni::key_prefix(&cluster)
            .map_err(|e| e.message)
            .and_then(|prefix| {
                let mut kvs = Vec::new();
                for (p, limit) in [
                    (format!("{prefix}members/"), 1000),
                    (format!("{prefix}leader"), 1),
                    (format!("{prefix}config"), 1),
                ] {
                    match self.call(Cmd::ReadPrefix { prefix: p, limit }, self.wait_for())? {
                        Reply::Read(Ok(found)) => kvs.extend(found.into_iter().map(|kv| {
                            (
                                String::from_utf8_lossy(&kv.key).into_owned(),
                                String::from_utf8_lossy(&kv.value).into_owned(),
                            )
                        })),
                        Reply::Read(Err(e)) => return Err(e.to_string()),
                        other => return Err(format!("unexpected reply {other:?}")),
                    }
                }
                Ok((prefix, kvs))
            });
        let (prefix, kvs) = match read {
            Ok(r) => r,
            Err(e) => {
                if self.last_patroni_error.as_deref() != Some(e.as_str()) {
                    server_log!("pgops etcd: cannot read Patroni's keys (logged again when the error changes): {e}");
                    self.last_patroni_error = Some(e);
                }
                return;
            }
        };
        self.last_patroni_error = None;
        // SAFETY: the server's port setting, fixed at start.
        let port = unsafe { pg_sys::PostPortNumber } as u16;
        let mut view = crate::patroni::parse(&prefix, &kvs, xact::now() / 1_000_000 + 946_684_800);
        if self.patroni.is_none() {
            // The last view of this server's previous run, if any: its member name is sticky.
            self.patroni = crate::patroni::view().filter(|v| v.prefix == prefix);
        }
        let old = self.patroni.as_ref();
        // Host names are resolved here, in the worker, and only when the members changed.
        match old.filter(|o| {
            o.members.len() == view.members.len()
                && o.members
                    .iter()
                    .zip(&view.members)
                    .all(|(a, b)| (&a.name, &a.host) == (&b.name, &b.host))
        }) {
            Some(o) => {
                for (m, was) in view.members.iter_mut().zip(&o.members) {
                    m.addresses = was.addresses.clone();
                }
            }
            None => crate::patroni::resolve_members(&mut view, 32),
        }
        // The member name is sticky: a member key that expired while Patroni restarts, or a
        // second key naming this host and port, does not take the name away (the instance
        // would look like another one and its pg_hba.conf be rewritten); only another unique
        // match changes it.
        view.me = crate::patroni::find_me(&view.members, port, |m| crate::patroni::is_local(m, &hostname))
            .or_else(|| old.and_then(|o| o.me.clone()));
        let changed = old.is_none_or(|o| {
            (&o.members, &o.leader, o.pg_hba_in_config, &o.me)
                != (&view.members, &view.leader, view.pg_hba_in_config, &view.me)
        });
        if changed {
            let was = old.map(|o| (o.present(), o.me.clone(), o.pg_hba_in_config));
            let now = (view.present(), view.me.clone(), view.pg_hba_in_config);
            if was != Some(now.clone()) && (view.present() || was.is_some_and(|w| w.0)) {
                server_log!(
                    "pgops etcd: Patroni under {prefix}: {} member(s){}{}",
                    view.members.len(),
                    match &view.me {
                        Some(m) => format!(", this server is member \"{m}\""),
                        None => ", none of them is this server".to_string(),
                    },
                    if view.pg_hba_in_config {
                        "; its configuration sets postgresql.pg_hba (Patroni rewrites pg_hba.conf at its next reload if it manages this server)"
                    } else {
                        ""
                    }
                );
            }
            if let Err(e) = crate::patroni::write_view(&view) {
                server_log!("pgops etcd: {e}");
            }
        }
        self.patroni = Some(view);
    }

    /// Follows `<prefix>/fleet/<pgops.fleet_name>`: verifies a new revision against
    /// pgops.fleet_trusted_keys and the generation loaded, and on the primary loads this
    /// cluster's share in one transaction. Also reads every member document of the fleet for
    /// pgops.fleet_status. Reads only: nothing is written to etcd here.
    fn follow_fleet(&mut self) {
        let Some(name) = gucs::fleet_name() else {
            self.fleet = FleetFollow::default();
            return;
        };
        // The name becomes part of an etcd key and of log lines: letters, digits, - _ . only.
        if pgops_core::fleet::check_name(&name).is_err() {
            self.fleet_note("pgops.fleet_name is not a valid fleet name (1 to 63 letters, digits, -, _ or .): no fleet is followed".into());
            self.fleet = FleetFollow::default();
            return;
        }
        if self.fleet.name.as_deref() != Some(name.as_str()) {
            self.fleet = FleetFollow {
                name: Some(name.clone()),
                ..FleetFollow::default()
            };
        }
        if self.plan.is_none() {
            return;
        }
        let prefix = gucs::etcd().prefix;
        let key = pgops_core::fleet::key(&prefix, &name);
        let everything = format!("{}/", prefix.trim_end_matches('/'));
        let kvs = match self.call(Cmd::ReadPrefix { prefix: everything, limit: 100_000 }, self.wait_for()) {
            Ok(Reply::Read(Ok(kvs))) => kvs,
            Ok(Reply::Read(Err(e))) => {
                self.fleet_note(format!("cannot read the fleet from etcd: {e}"));
                return;
            }
            Ok(other) => {
                self.fleet_note(format!("unexpected reply {other:?}"));
                return;
            }
            Err(e) => {
                self.fleet_note(format!("cannot read the fleet from etcd: {e}"));
                return;
            }
        };
        let doc = kvs.iter().find(|kv| kv.key == key.as_bytes()).cloned();
        let pairs: Vec<(String, Vec<u8>)> = kvs
            .into_iter()
            .map(|kv| (String::from_utf8_lossy(&kv.key).into_owned(), kv.value))
            .collect();
        let Some(doc) = doc else {
            self.fleet.seen = None;
            self.fleet.refused = None;
            let rows = pgops_core::fleet::members(&prefix, &pairs, &name);
            let _ = crate::fleet::write_fleet_file(&name, None, &rows);
            return;
        };
        if doc.mod_revision != self.fleet.revision || self.fleet.failed.is_some() {
            self.fleet.revision = doc.mod_revision;
            self.check_fleet_document(&name, &key, &doc);
        }
        let published = pgops_core::fleet::verify(
            &doc.value,
            &pgops_core::fleet::trusted_keys(&gucs::fleet_trusted_keys()).0,
            &name,
            None,
        )
        .ok()
        .map(|v| v.payload.generation);
        let rows = pgops_core::fleet::members(&prefix, &pairs, &name);
        if let Err(e) = crate::fleet::write_fleet_file(&name, published, &rows) {
            self.fleet_note(e);
        }
    }

    fn fleet_note(&mut self, e: String) {
        if self.last_pgops_error.as_deref() != Some(e.as_str()) {
            server_log!("pgops fleet: {e}");
            self.last_pgops_error = Some(e);
        }
    }

    fn check_fleet_document(&mut self, name: &str, key: &str, doc: &super::client::Kv) {
        let (trusted, bad) = pgops_core::fleet::trusted_keys(&gucs::fleet_trusted_keys());
        for b in &bad {
            server_log!("pgops fleet: pgops.fleet_trusted_keys: {b} (ignored)");
        }
        let loaded = match xact::run("pgops fleet: read the generation loaded", || crate::fleet::loaded(name)) {
            Ok(l) => l,
            Err(e) => {
                self.fleet.failed = Some(e.one_line());
                return;
            }
        };
        // pgops.fleet_min_generation: never older than that, even with nothing loaded yet.
        let min = gucs::fleet_min_generation();
        let loaded = match loaded {
            Some((g, sha)) if g >= min - 1 => Some((g, sha)),
            _ if min > 0 => Some((min - 1, String::new())),
            other => other,
        };
        let verified = pgops_core::fleet::verify(&doc.value, &trusted, name, loaded.as_ref().map(|(g, s)| (*g, s.as_str())));
        let v = match verified {
            Err(refusal) => {
                let why = refusal.to_string();
                server_log!(
                    "pgops fleet: refused the document at {key} (etcd revision {}): {why}; nothing was changed",
                    doc.mod_revision
                );
                self.fleet.refused = Some(why);
                self.fleet.failed = None;
                return;
            }
            Ok(v) => v,
        };
        self.fleet.refused = None;
        self.fleet.seen = Some(v.payload.generation);
        // SAFETY: reads shared recovery state.
        let primary = unsafe { !pg_sys::RecoveryInProgress() };
        if v.already_loaded || !primary {
            self.fleet.failed = None;
            return;
        }
        let (cluster, _, _) = identity::current();
        let generation = v.payload.generation;
        match xact::run("pgops fleet: load the cluster's share", || {
            crate::fleet::load_share(name, &v, doc.mod_revision, &cluster)
        }) {
            Ok(l) => {
                self.fleet.failed = None;
                self.fleet.load_wakes = crate::reconcile::wakes_now();
                server_log!(
                    "pgops fleet: loaded generation {generation} of fleet {name} for cluster {cluster} (signed by {}): {} role(s), {} database(s), {} HBA rule(s), {} default privilege(s){}",
                    v.key,
                    l.roles,
                    l.databases,
                    l.hba_rules,
                    l.default_privileges,
                    if l.conflicts.is_empty() {
                        String::new()
                    } else {
                        format!("; not loaded, declared locally: {}", l.conflicts.join("; "))
                    }
                );
            }
            Err(e) => {
                let line = e.one_line();
                if self.fleet.failed.as_deref() != Some(line.as_str()) {
                    server_log!("pgops fleet: loading generation {generation} of fleet {name} failed, nothing was changed: {line}");
                }
                self.fleet.failed = Some(line);
            }
        }
    }

    /// This instance's place in the fleet, for its etcd document.
    fn fleet_report(&self) -> Option<serde_json::Value> {
        let name = self.fleet.name.clone()?;
        // SAFETY: reads shared recovery state.
        let replica = unsafe { pg_sys::RecoveryInProgress() };
        let facts = xact::run("pgops fleet: report", || crate::fleet::facts(&name));
        let (generation, conflicts, mut reconcile, facts_error) = match facts {
            Ok((g, c, r)) => (g, c, r, None),
            Err(e) => (None, 0, vec![], Some(e.one_line())),
        };
        // A capability's state counts only from a reconcile that planned from the last load.
        for (cap, policy, state, _) in reconcile.iter_mut() {
            if !replica && policy != "off" && !crate::reconcile::ran_since(cap, self.fleet.load_wakes) {
                *state = "pending".into();
            }
        }
        let (state, held, error) = pgops_core::fleet::member_state(
            generation,
            self.fleet.seen,
            self.fleet.refused.as_deref(),
            self.fleet.failed.as_deref().or(facts_error.as_deref()),
            conflicts,
            &reconcile,
            replica,
        );
        Some(serde_json::json!({
            "fleet": name, "generation": generation, "seen_generation": self.fleet.seen,
            "state": state, "held": held, "last_error": error,
        }))
    }

    /// Reads every member document under the cluster's prefix into MEMBERS_FILE.
    fn read_members(&mut self, seq: u64) {
        let result = match self.plan.clone() {
            None => Err(self
                .config_error
                .clone()
                .unwrap_or_else(|| "publishing is off: pgops.etcd_endpoints is empty".into())),
            Some(plan) => {
                let cmd = Cmd::ReadPrefix {
                    prefix: plan.members_prefix.clone(),
                    limit: 10_000,
                };
                match self.call(cmd, self.wait_for()) {
                    Ok(Reply::Read(Ok(kvs))) => write_members(&kvs),
                    Ok(Reply::Read(Err(e))) => Err(e.to_string()),
                    Ok(other) => Err(format!("unexpected reply {other:?}")),
                    Err(e) => Err(e),
                }
            }
        };
        status(|st| st.answer_read(seq, result.err().as_deref()));
    }

    fn sleep_time(&self) -> Duration {
        if self.plan.is_none() {
            // Off: a reload wakes us. A configuration error may be mended in a file (password,
            // key mode) without a reload: look again every interval.
            return match self.config_error {
                Some(_) => Duration::from_secs(gucs::etcd().interval_s.max(1) as u64),
                None => Duration::from_secs(60),
            };
        }
        self.next_push
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(10))
    }

    /// Revokes the lease (bounded wait) and exits.
    fn shutdown(&mut self, state: &str) -> ! {
        if self.plan.is_some() {
            // A SIGTERM already seen must not cut this short: the revocation is the point.
            let saved = std::mem::replace(&mut self.terminating, false);
            let r = self.io.call(Cmd::Revoke, Instant::now() + REVOKE_WAIT, &mut || false);
            self.terminating = saved;
            let now = xact::now();
            match r {
                Ok(Reply::Revoked(Ok(_))) => {
                    status(|st| st.disable("stopped: lease revoked"));
                }
                other => {
                    let why = format!("lease not revoked at shutdown (it expires after its TTL): {other:?}");
                    server_log!("pgops etcd: {why}");
                    status(|st| {
                        st.record_error(&why, now);
                        st.disable("stopped: lease left to expire");
                    });
                }
            }
        }
        exit(self.slot, state)
    }
}

/// The member document: server facts in one short transaction, pgops' own facts in another (an
/// error there must not keep the server facts from going out).
fn collect(
    last_pgops_error: &mut Option<String>,
    slow: &mut Option<(Instant, bool, serde_json::Value)>,
) -> Result<MemberState, String> {
    let (cluster, instance, hostname) = identity::current();
    let (mut server, installed) = xact::run("pgops etcd: read instance state", || {
        let server = crate::spi::get_one::<pgrx::JsonB>(super::collect::SERVER_STATE_SQL)?
            .ok_or_else(|| crate::error::Error::internal("state query returned nothing"))?
            .0;
        let installed =
            crate::spi::get_one::<bool>("SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pgops')")?
                .unwrap_or(false);
        Ok((server, installed))
    })
    .map_err(|e| e.one_line())?;
    let mut note = |e: String| {
        if last_pgops_error.as_deref() != Some(e.as_str()) {
            server_log!("pgops etcd: some facts are left out of the pushes until this is mended: {e}");
        }
        *last_pgops_error = Some(e);
    };
    // Read again when due, or when pgops was installed (or dropped) since: role drift comes with it.
    if slow
        .as_ref()
        .is_none_or(|(at, with_pgops, _)| at.elapsed() >= super::collect::SLOW_FACTS_EVERY || *with_pgops != installed)
    {
        let mut facts = serde_json::Map::new();
        let mut queries = vec![("pgops etcd: database sizes", super::collect::DATABASE_SIZES_SQL)];
        if installed {
            queries.push(("pgops etcd: role drift", super::collect::ROLE_DRIFT_SQL));
            queries.push(("pgops etcd: database drift", super::collect::DATABASE_DRIFT_SQL));
        }
        for (activity, query) in queries {
            match xact::run(activity, || Ok(crate::spi::get_one::<pgrx::JsonB>(query)?.map(|j| j.0))) {
                Ok(Some(serde_json::Value::Object(m))) => facts.extend(m),
                Ok(_) => {}
                Err(e) => note(e.one_line()),
            }
        }
        // Tried: the next attempt waits as long as a success would.
        *slow = Some((Instant::now(), installed, serde_json::Value::Object(facts)));
    }
    let pgops = if installed {
        match xact::run("pgops etcd: read pgops state", || {
            Ok(crate::spi::get_one::<pgrx::JsonB>(super::collect::PGOPS_STATE_SQL)?.map(|j| j.0))
        }) {
            Ok(v) => v,
            Err(e) => {
                note(e.one_line());
                None
            }
        }
    } else {
        None
    };
    if let (serde_json::Value::Object(s), Some((_, _, serde_json::Value::Object(f)))) = (&mut server, slow.as_ref()) {
        for (k, v) in f {
            s.insert(k.clone(), v.clone());
        }
    }
    super::collect::member_state(&cluster, &instance, &hostname, server, pgops)
}

fn write_members(kvs: &[super::client::Kv]) -> Result<(), String> {
    let rows: Vec<serde_json::Value> = kvs
        .iter()
        .map(|kv| {
            serde_json::json!({
                "key": String::from_utf8_lossy(&kv.key),
                "lease": kv.lease,
                "mod_revision": kv.mod_revision,
                "value": String::from_utf8_lossy(&kv.value),
            })
        })
        .collect();
    let tmp = format!("{MEMBERS_FILE}.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&rows).map_err(|e| e.to_string())?)
        .and_then(|()| std::fs::rename(&tmp, MEMBERS_FILE))
        .map_err(|e| format!("cannot write {MEMBERS_FILE}: {e}"))
}
