//! A private local Redis Cluster for the tests: six `redis-server` processes in cluster mode on
//! free loopback ports (three masters with one replica each, AOF on), made a cluster with
//! `redis-cli --cluster create`. The contract suite shares one per test binary (each test under
//! its own key prefix); a test that kills nodes starts its own.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Cluster node timeout: how long a master may be silent before its replica takes over.
pub const NODE_TIMEOUT_MS: u64 = 1000;

pub struct ClusterNode {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

pub struct RedisCluster {
    pub nodes: Vec<ClusterNode>,
    _dir: tempfile::TempDir,
}

/// A port for a node whose cluster bus (port + 10000) is free too.
fn node_port() -> u16 {
    loop {
        let port = crate::helpers::free_port();
        if port < 55_536 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn spawn_node(port: u16, dir: &Path) -> Child {
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"])
        .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
        .args(["--appendonly", "yes", "--appendfsync", "everysec"])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // The node dies with the thread that started it, even when the test binary is killed.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
        .expect("redis-server must be installed (run scripts/test, which installs it)")
}

fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> Option<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let mut c = client.get_connection_with_timeout(Duration::from_secs(1)).ok()?;
    cmd.query(&mut c).ok()
}

fn info(port: u16, section: &str) -> String {
    query(port, redis::cmd("INFO").arg(section)).unwrap_or_default()
}

impl RedisCluster {
    /// Starts six nodes and makes them a cluster of three masters with a replica each; returns
    /// once every node sees every slot served and every replica is in sync.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut nodes = Vec::new();
        for i in 0..6 {
            let port = node_port();
            let node_dir = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(&node_dir).unwrap();
            let child = spawn_node(port, &node_dir);
            nodes.push(ClusterNode {
                port,
                dir: node_dir,
                child: Some(child),
            });
        }
        let cluster = RedisCluster { nodes, _dir: dir };
        for n in &cluster.nodes {
            cluster.wait(
                || query::<String>(n.port, &redis::cmd("PING")).is_some(),
                "a node to start",
            );
        }
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(cluster.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli must be installed with redis-server");
        assert!(status.success(), "redis-cli --cluster create failed");
        cluster.wait_healthy();
        cluster
    }

    fn wait(&self, mut ok: impl FnMut() -> bool, what: &str) {
        // Generous: on a 2-core machine running the whole suite at once, six nodes and their
        // replicas' first syncs once took over 30 s, and every cluster test failed with them.
        let deadline = Instant::now() + Duration::from_secs(90);
        while !ok() {
            assert!(
                Instant::now() < deadline,
                "the test cluster timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every running node says the cluster is ok and every replica is in sync.
    pub fn wait_healthy(&self) {
        self.wait(
            || {
                self.running().all(|n| {
                    let cluster = query::<String>(n.port, redis::cmd("CLUSTER").arg("INFO")).unwrap_or_default();
                    let repl = info(n.port, "replication");
                    cluster.contains("cluster_state:ok")
                        && (repl.contains("role:master") || repl.contains("master_link_status:up"))
                })
            },
            "the cluster to be ok",
        );
    }

    fn running(&self) -> impl Iterator<Item = &ClusterNode> {
        self.nodes.iter().filter(|n| n.child.is_some())
    }

    /// Comma-separated seeds, as `KOLINK_REDIS_CLUSTER` takes them.
    pub fn seeds(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The port of the master that serves `key` now.
    pub fn master_of(&self, key: &str) -> u16 {
        let any = self.running().next().expect("a running node").port;
        let slot: i64 = query(any, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key)).expect("CLUSTER KEYSLOT");
        let ranges: Vec<redis::Value> = query(any, redis::cmd("CLUSTER").arg("SLOTS")).expect("CLUSTER SLOTS");
        for range in ranges {
            let redis::Value::Array(parts) = range else { continue };
            if let (Some(redis::Value::Int(a)), Some(redis::Value::Int(b)), Some(redis::Value::Array(m))) =
                (parts.first(), parts.get(1), parts.get(2))
            {
                if (*a..=*b).contains(&slot) {
                    if let Some(redis::Value::Int(port)) = m.get(1) {
                        return *port as u16;
                    }
                }
            }
        }
        panic!("no master serves {key}");
    }

    /// Kills a node (SIGKILL).
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this cluster");
        if let Some(mut c) = node.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a killed node again on its port and data; it rejoins (a killed master whose
    /// replica took over comes back as that replica's replica).
    pub fn start_again(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this cluster");
        node.child = Some(spawn_node(port, &node.dir));
    }

    /// The port of a replica of the master on `port`.
    pub fn replica_of(&self, port: u16) -> u16 {
        let repl = info(port, "replication");
        repl.lines()
            .filter(|l| l.starts_with("slave"))
            .find_map(|l| l.split(',').find_map(|kv| kv.strip_prefix("port="))?.parse().ok())
            .expect("the master has a replica")
    }

    /// Closes the master's connections to its replicas (they copy nothing until they connect
    /// again; what the master takes meanwhile is on the master alone).
    pub fn cut_replicas(&self, master: u16) {
        let _: Option<i64> = query(master, redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("replica"));
    }

    /// Freezes a node (SIGSTOP): it neither answers nor copies from its master.
    pub fn pause(&self, port: u16) {
        self.signal(port, "-STOP");
    }

    pub fn resume(&self, port: u16) {
        self.signal(port, "-CONT");
    }

    fn signal(&self, port: u16, sig: &str) {
        let node = self
            .nodes
            .iter()
            .find(|n| n.port == port)
            .expect("a node of this cluster");
        let pid = node.child.as_ref().expect("a running node").id();
        let ok = Command::new("kill")
            .arg(sig)
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    /// Whether the node on `port` is a master now.
    pub fn is_master(&self, port: u16) -> bool {
        info(port, "replication").contains("role:master")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                // A frozen node must wake to die.
                let _ = Command::new("kill").arg("-CONT").arg(c.id().to_string()).status();
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// A share of the test binary's one cluster: its seeds and a key prefix of this test's own.
#[derive(Debug, Clone)]
pub struct ClusterLease {
    pub seeds: String,
    pub prefix: String,
}

/// The cluster the contract suite shares, started at first use by a thread that lives as long
/// as the test binary (its nodes die with that thread).
pub fn lease() -> ClusterLease {
    static SEEDS: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let seeds = SEEDS.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let cluster = RedisCluster::start();
            tx.send(cluster.seeds()).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("the shared test cluster started")
    });
    ClusterLease {
        seeds: seeds.clone(),
        prefix: format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed)),
    }
}

impl ClusterLease {
    pub fn target(&self) -> kolink::store::redis::Target {
        kolink::store::redis::Target::Cluster(self.seeds.split(',').map(str::to_owned).collect())
    }

    /// A cluster connection, to read or write what kolink stored.
    pub async fn connection(&self) -> redis::cluster_async::ClusterConnection {
        redis::cluster::ClusterClient::new(self.seeds.split(',').collect::<Vec<_>>())
            .unwrap()
            .get_async_connection()
            .await
            .expect("connect to the test cluster")
    }
}
