//! The etcd I/O thread of the pusher worker.
//!
//! All HTTP happens on one thread the worker starts with every signal blocked (the reqwest
//! thread it creates inherits that mask), so PostgreSQL's signal handlers only ever run on the
//! worker's main thread. The main thread hands over a command and waits for the reply in short
//! slices, checking for SIGTERM between them: a request stuck on an unreachable endpoint never
//! delays shutdown. A reply that comes after the caller gave up is recognised by its sequence
//! number and dropped. The thread never calls PostgreSQL.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use super::client::{Config, Error, Kv};
use super::session::{Owner, Report, Session};

pub enum Cmd {
    /// Replace the session (None: publishing off). The old one is dropped without revoking.
    Configure(Option<(Config, Duration)>),
    /// Only the password changed: keep the session (and its lease), re-authenticate.
    SetPassword(Option<String>),
    Push {
        key: String,
        value: Vec<u8>,
        digest: super::state::Digest,
        owner: Owner,
        force: bool,
    },
    ReadPrefix {
        prefix: String,
        limit: i64,
    },
    Revoke,
}

#[derive(Debug)]
pub enum Reply {
    Configured(Result<(), Error>),
    Pushed(Result<Report, Error>),
    Read(Result<Vec<Kv>, Error>),
    Revoked(Result<bool, Error>),
}

/// Why `call` returned without a reply.
#[derive(Debug, PartialEq)]
pub enum NoReply {
    Interrupted,
    TimedOut,
    ThreadGone,
}

pub struct Io {
    tx: Sender<(u64, Cmd)>,
    rx: Receiver<(u64, Reply)>,
    seq: u64,
}

/// Blocks every signal on the calling thread until dropped (threads started meanwhile inherit
/// the full mask).
struct SignalsBlocked(libc::sigset_t);

impl SignalsBlocked {
    fn new() -> SignalsBlocked {
        // SAFETY: plain sigset manipulation on this thread's mask.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
            SignalsBlocked(old)
        }
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `new`.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut());
        }
    }
}

fn serve(rx: Receiver<(u64, Cmd)>, tx: Sender<(u64, Reply)>) {
    let mut session: Option<Session> = None;
    let off = || Error::Config("publishing is off (pgops.etcd_endpoints is empty)".into());
    for (seq, cmd) in rx {
        let reply = match cmd {
            Cmd::Configure(cfg) => {
                session = None;
                Reply::Configured(match cfg {
                    Some((cfg, ttl)) => Session::new(cfg, ttl).map(|s| {
                        session = Some(s);
                    }),
                    None => Ok(()),
                })
            }
            Cmd::SetPassword(p) => Reply::Configured(match session.as_mut() {
                Some(s) => {
                    s.set_password(p);
                    Ok(())
                }
                None => Err(off()),
            }),
            Cmd::Push {
                key,
                value,
                digest,
                owner,
                force,
            } => Reply::Pushed(match session.as_mut() {
                Some(s) => s.push(&key, &value, digest, &owner, force),
                None => Err(off()),
            }),
            Cmd::ReadPrefix { prefix, limit } => Reply::Read(match session.as_mut() {
                Some(s) => s.read_prefix(&prefix, limit),
                None => Err(off()),
            }),
            Cmd::Revoke => Reply::Revoked(match session.as_mut() {
                Some(s) => s.revoke(),
                None => Ok(false),
            }),
        };
        if tx.send((seq, reply)).is_err() {
            return;
        }
    }
}

impl Io {
    /// Starts the I/O thread with every signal blocked.
    pub fn start() -> std::io::Result<Io> {
        let (cmd_tx, cmd_rx) = channel();
        let (reply_tx, reply_rx) = channel();
        {
            let _blocked = SignalsBlocked::new();
            std::thread::Builder::new()
                .name("pgops-etcd-io".into())
                .spawn(move || serve(cmd_rx, reply_tx))?;
        }
        Ok(Io {
            tx: cmd_tx,
            rx: reply_rx,
            seq: 0,
        })
    }

    /// Sends `cmd` and waits for its reply until `deadline`, returning early when `interrupted()`
    /// says so (checked every 20 ms).
    pub fn call(
        &mut self,
        cmd: Cmd,
        deadline: Instant,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<Reply, NoReply> {
        self.seq += 1;
        let seq = self.seq;
        self.tx.send((seq, cmd)).map_err(|_| NoReply::ThreadGone)?;
        loop {
            if interrupted() {
                return Err(NoReply::Interrupted);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(NoReply::TimedOut);
            }
            match self.rx.recv_timeout(left.min(Duration::from_millis(20))) {
                Ok((s, reply)) if s == seq => return Ok(reply),
                Ok(_) => {} // the late answer to a call given up on
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(NoReply::ThreadGone),
            }
        }
    }
}

/// The signal mask of thread `tid` of this process, from /proc (`SigBlk`), for tests.
#[cfg(test)]
fn blocked_mask(tid: i64) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("SigBlk:")).unwrap();
    u64::from_str_radix(line[7..].trim(), 16).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::testing::RealEtcd;

    fn threads() -> Vec<(i64, String)> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .map(|e| {
                let tid: i64 = e.unwrap().file_name().to_string_lossy().parse().unwrap();
                let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap();
                (tid, comm.trim().to_string())
            })
            .collect()
    }

    fn never() -> impl FnMut() -> bool {
        || false
    }

    /// Other tests in this binary build reqwest clients on ordinary test threads, so the masks
    /// are checked in a process of its own: the test binary re-run on `io_thread_masks_in_child`.
    #[test]
    fn the_io_thread_and_reqwest_thread_have_every_signal_blocked() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "etcd::io::tests::io_thread_masks_in_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("PGOPS_IO_MASK_CHILD", "1")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("masks checked: 2 threads"), "{text}");
    }

    /// The body of the test above; does nothing unless started by it.
    #[test]
    fn io_thread_masks_in_child() {
        if std::env::var_os("PGOPS_IO_MASK_CHILD").is_none() {
            return;
        }
        let e = RealEtcd::start(1);
        let mut io = Io::start().unwrap();
        let far = Instant::now() + Duration::from_secs(10);
        let cfg = Config {
            endpoints: e.urls.clone(),
            timeout: Duration::from_secs(2),
            ..Config::default()
        };
        assert!(matches!(
            io.call(Cmd::Configure(Some((cfg, Duration::from_secs(10)))), far, &mut never()),
            Ok(Reply::Configured(Ok(())))
        ));
        let owner = Owner {
            hostname: "h".into(),
            port: 1,
            data_directory: "/d".into(),
        };
        let push = Cmd::Push {
            key: "/pg/t/pgops/members/x".into(),
            value: b"{}".to_vec(),
            digest: 1.into(),
            owner,
            force: false,
        };
        assert!(matches!(io.call(push, far, &mut never()), Ok(Reply::Pushed(Ok(r))) if r.wrote));
        let ours: Vec<_> = threads()
            .into_iter()
            .filter(|(_, c)| c.starts_with("pgops-etcd-io") || c.starts_with("reqwest-interna"))
            .collect();
        assert_eq!(
            ours.len(),
            2,
            "the I/O thread and the reqwest thread it started: {ours:?}"
        );
        for (tid, comm) in &ours {
            let mask = blocked_mask(*tid);
            for sig in [
                libc::SIGTERM,
                libc::SIGHUP,
                libc::SIGUSR1,
                libc::SIGINT,
                libc::SIGALRM,
                libc::SIGQUIT,
            ] {
                assert!(
                    mask & (1 << (sig - 1)) != 0,
                    "{comm} ({tid}) accepts signal {sig}: mask {mask:x}"
                );
            }
        }
        assert!(matches!(
            io.call(Cmd::Revoke, far, &mut never()),
            Ok(Reply::Revoked(Ok(true)))
        ));
        println!("masks checked: {} threads", ours.len());
    }

    #[test]
    fn a_stuck_request_does_not_hold_the_caller() {
        // A listener that accepts and never answers: the request hangs until the client timeout.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let mut io = Io::start().unwrap();
        let far = Instant::now() + Duration::from_secs(10);
        let cfg = Config {
            endpoints: vec![url],
            timeout: Duration::from_secs(3),
            ..Config::default()
        };
        io.call(Cmd::Configure(Some((cfg, Duration::from_secs(10)))), far, &mut never())
            .unwrap();
        let started = Instant::now();
        let mut polls = 0;
        let r = io.call(Cmd::Revoke, far, &mut || false);
        assert!(matches!(r, Ok(Reply::Revoked(Ok(false)))), "no lease: nothing to send");
        let read = Cmd::ReadPrefix {
            prefix: "/pg/".into(),
            limit: 1,
        };
        let r = io.call(read, far, &mut || {
            polls += 1;
            polls > 5
        });
        assert_eq!(r.unwrap_err(), NoReply::Interrupted);
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        // A deadline also ends the wait; the late reply to the abandoned call is then skipped.
        let r = io.call(Cmd::Revoke, Instant::now() + Duration::from_millis(100), &mut never());
        assert_eq!(r.unwrap_err(), NoReply::TimedOut);
        let r = io.call(Cmd::Revoke, Instant::now() + Duration::from_secs(10), &mut never());
        assert!(matches!(r, Ok(Reply::Revoked(Ok(false)))), "{r:?}");
        drop(l);
    }
}
