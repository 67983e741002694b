//! Kiln on a real Redis Cluster: three masters from `redis-server` processes, the client in cluster mode
//! (`redis+cluster://`), and the end-to-end flow on top.

use crate::common::*;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Three cluster-enabled masters on loopback, holding all 16384 slots between them.
struct Cluster {
    _dir: tempfile::TempDir,
    nodes: Vec<Child>,
    ports: Vec<u16>,
}

/// A free port whose cluster-bus port (port + 10000) is free too.
fn free_cluster_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

impl Cluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..3).map(|_| free_cluster_port()).collect();
        let nodes = ports
            .iter()
            .map(|port| {
                let node_dir = dir.path().join(port.to_string());
                std::fs::create_dir_all(&node_dir).unwrap();
                Command::new("redis-server")
                    .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                    .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"])
                    .args(["--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"])
                    .arg("--dir")
                    .arg(&node_dir)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("redis-server")
            })
            .collect();
        let cluster = Self {
            _dir: dir,
            nodes,
            ports,
        };
        for port in &cluster.ports {
            cluster.wait_for(*port, "PING", "PONG");
        }
        let addresses: Vec<String> = cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(created.success(), "redis-cli --cluster create failed");
        for port in &cluster.ports {
            cluster.wait_for(*port, "CLUSTER INFO", "cluster_state:ok");
        }
        cluster
    }

    fn wait_for(&self, port: u16, command: &str, expected: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let output = Command::new("redis-cli")
                .args(["-p", &port.to_string()])
                .args(command.split(' '))
                .output()
                .unwrap();
            if String::from_utf8_lossy(&output.stdout).contains(expected) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis node {port} never answered `{command}` with `{expected}`");
    }

    fn url(&self) -> String {
        let hosts: Vec<String> = self.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// The node that owns Kiln's hash slot answered for this key.
    fn owner_has(&self, key: &str) -> bool {
        self.ports.iter().any(|port| {
            let output = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "EXISTS", key])
                .output()
                .unwrap();
            String::from_utf8_lossy(&output.stdout).trim() == "1"
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}

#[tokio::test]
async fn the_whole_flow_runs_on_a_three_master_cluster() {
    let cluster = Cluster::start();
    let kiln = Kiln::serve_at(&cluster.url(), &[]);
    let http = client();

    // Plot and crop, end to end.
    let plot = json!({"params": {"title": "on a cluster", "series": [{"x": [0, 1, 2], "y": [2, 0, 1]}]}});
    let response = http.post(kiln.url("/v1/jobs/plot")).json(&plot).send().await.unwrap();
    assert_eq!(response.status(), 202);
    let doc: Value = response.json().await.unwrap();
    let id = doc["id"].as_str().unwrap().to_owned();
    let done = wait_final(&kiln, &id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let png = http
        .get(kiln.url(&format!("/v1/jobs/{id}/result")))
        .send()
        .await
        .unwrap();
    assert_eq!(png.status(), 200);
    assert_eq!(decode_png(&png.bytes().await.unwrap()).width(), 800);
    assert!(cluster.owner_has(&format!("{{kiln}}:job:default:{id}")));

    let source = encode_png(&coordinate_image(64, 48));
    let crop = run_multipart(
        &kiln,
        "crop",
        json!({"crop": {"x": 8, "y": 4, "width": 16, "height": 16}}),
        source,
        "a.png",
    )
    .await;
    assert_eq!(crop["status"], "succeeded", "{crop}");

    // Listing, cancel, kinds and stats touch every script and pipeline.
    let listing: Value = send_json(http.get(kiln.url("/v1/jobs"))).await;
    assert_eq!(listing["jobs"].as_array().unwrap().len(), 2);
    let cancel = http.delete(kiln.url(&format!("/v1/jobs/{id}"))).send().await.unwrap();
    assert_eq!(cancel.status(), 409, "finished jobs cannot be cancelled");
    let kinds: Value = send_json(http.get(kiln.url("/v1/kinds"))).await;
    assert!(kinds["kinds"].as_array().unwrap().len() >= 2);
    let stats = http.get(kiln.url("/v1/stats")).send().await.unwrap();
    assert_eq!(stats.status(), 200);
}
