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

/// PEM files of a throwaway CA, a server certificate for 127.0.0.1 and a client certificate,
/// made with openssl.
pub struct Tls {
    pub ca: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (installed by pg_test/setup.sh) must be on PATH");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Tls {
    pub fn make(dir: &std::path::Path) -> Tls {
        std::fs::create_dir_all(dir).unwrap();
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=pgops-test-ca",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
            ],
        );
        // The server certificate also needs clientAuth: with --client-cert-auth, etcd's JSON
        // gateway dials etcd's own gRPC port presenting it.
        for (name, cn, usage) in [
            ("server", "127.0.0.1", "serverAuth,clientAuth"),
            ("client", "pg-meta", "clientAuth"),
        ] {
            std::fs::write(
                dir.join(format!("{name}.ext")),
                format!("subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n"),
            )
            .unwrap();
            openssl(
                dir,
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-subj",
                    &format!("/CN={cn}"),
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                ],
            );
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    &format!("{name}.ext"),
                    "-out",
                    &format!("{name}.crt"),
                ],
            );
        }
        let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
        Tls {
            ca: p("ca.crt"),
            server_cert: p("server.crt"),
            server_key: p("server.key"),
            client_cert: p("client.crt"),
            client_key: p("client.key"),
        }
    }
}

impl RealEtcd {
    /// Starts `members` etcd processes forming one cluster and waits until each answers /health.
    pub fn start(members: usize) -> RealEtcd {
        let e = Self::launch(members, None);
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

    /// One member serving https with `tls`'s server certificate and requiring client
    /// certificates signed by its CA. Not waited for: the caller polls with its own client.
    pub fn start_tls(tls: &Tls) -> RealEtcd {
        Self::launch(1, Some(tls))
    }

    fn launch(members: usize, tls: Option<&Tls>) -> RealEtcd {
        let dir = std::env::temp_dir().join(format!("pgops-etcd-test-{}-{}", std::process::id(), free_port()));
        let ports: Vec<(u16, u16)> = (0..members).map(|_| (free_port(), free_port())).collect();
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, p))| format!("m{i}=http://127.0.0.1:{p}"))
            .collect();
        let mut children = vec![];
        let mut urls = vec![];
        let scheme = if tls.is_some() { "https" } else { "http" };
        for (i, (c, p)) in ports.iter().enumerate() {
            let url = format!("{scheme}://127.0.0.1:{c}");
            let mut cmd = Command::new("etcd");
            if let Some(t) = tls {
                cmd.args(["--cert-file", &t.server_cert, "--key-file", &t.server_key])
                    .args(["--client-cert-auth", "--trusted-ca-file", &t.ca]);
            }
            let child = cmd
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
        RealEtcd { children, dir, urls }
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
