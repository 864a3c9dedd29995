//! Real etcd servers for tests: Debian's etcd-server on loopback ports, one member or a cluster,
//! stopped and removed when dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct RealEtcd {
    children: Vec<Option<Child>>,
    dir: std::path::PathBuf,
    /// Client URL of each member, in member order.
    pub urls: Vec<String>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl RealEtcd {
    /// Starts `members` etcd processes forming one cluster and waits until each answers /health.
    pub fn start(members: usize) -> RealEtcd {
        let dir = std::env::temp_dir().join(format!("pgops-etcd-test-{}-{}", std::process::id(), free_port()));
        let ports: Vec<(u16, u16)> = (0..members).map(|_| (free_port(), free_port())).collect();
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, p))| format!("m{i}=http://127.0.0.1:{p}"))
            .collect();
        let mut children = vec![];
        let mut urls = vec![];
        for (i, (c, p)) in ports.iter().enumerate() {
            let url = format!("http://127.0.0.1:{c}");
            let child = Command::new("etcd")
                .args(["--name", &format!("m{i}"), "--data-dir"])
                .arg(dir.join(format!("m{i}")))
                .args(["--listen-client-urls", &url, "--advertise-client-urls", &url])
                .args(["--listen-peer-urls", &format!("http://127.0.0.1:{p}")])
                .args(["--initial-advertise-peer-urls", &format!("http://127.0.0.1:{p}")])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-state", "new"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("etcd (Debian package etcd-server, installed by pg_test/setup.sh) must be on PATH");
            children.push(Some(child));
            urls.push(url);
        }
        let e = RealEtcd { children, dir, urls };
        let http = reqwest::blocking::Client::new();
        for url in &e.urls {
            let healthy = (0..200).any(|_| {
                let ok = http
                    .get(format!("{url}/health"))
                    .send()
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                if !ok {
                    std::thread::sleep(Duration::from_millis(100));
                }
                ok
            });
            assert!(healthy, "etcd member {url} did not become healthy");
        }
        e
    }

    /// Kills member `i` (as a crash would).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RealEtcd {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
