//! `deploy/topology.sh` brings up Redis, one API and two workers as separate processes, and jobs flow
//! through that deployment end to end.

use crate::common::*;
use std::process::Command;

#[test]
fn the_local_topology_script_runs_jobs_across_processes() {
    // The API listens on `port`, the workers' probes on the next two: find three free ones in a row (other
    // tests run beside this one and take ports too).
    let port = (0..100)
        .find_map(|_| {
            let first = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
            let port = first.local_addr().ok()?.port();
            let next = [port.checked_add(1)?, port.checked_add(2)?];
            next.iter()
                .all(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
                .then_some(port)
        })
        .expect("three free ports in a row");
    // Submit a few plots, wait for them all, download each: workers are separate processes from the API.
    let check = r#"
        set -euo pipefail
        ids=()
        for i in 1 2 3 4; do
          doc=$(curl -fsS -X POST "$KILN_URL/v1/jobs/plot" -H 'content-type: application/json' \
            -d "{\"params\": {\"title\": \"job $i\", \"series\": [{\"x\": [0, 1], \"y\": [0, $i]}]}}")
          ids+=("$(echo "$doc" | sed -E 's/.*"id":"([^"]+)".*/\1/')")
        done
        for id in "${ids[@]}"; do
          for _ in $(seq 30); do
            doc=$(curl -fsS "$KILN_URL/v1/jobs/$id?wait=2")
            echo "$doc" | grep -Eq '"status":"(succeeded|failed|cancelled)"' && break
          done
          echo "$doc" | grep -q '"status":"succeeded"' || { echo "job $id did not succeed: $doc" >&2; exit 1; }
          curl -fsS -o "$OUT/$id.png" "$KILN_URL/v1/jobs/$id/result"
        done
    "#;
    let out = tempfile::tempdir().unwrap();
    // Reuse the suite's compiled components, so the workers are ready without compiling.
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(shared_cache_dir()).unwrap();
    std::os::unix::fs::symlink(shared_cache_dir(), data.path().join("cache")).unwrap();
    let status = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/topology.sh"))
        .args(["--workers", "2", "--port", &port.to_string(), "--", "bash", "-c", check])
        .env("KILN_BIN", kiln_bin())
        .env("OUT", out.path())
        .env("KILN_DATA_DIR", data.path())
        .status()
        .unwrap();
    assert!(status.success(), "topology script or jobs failed: {status}");
    let pngs: Vec<_> = std::fs::read_dir(out.path()).unwrap().collect();
    assert_eq!(pngs.len(), 4);
    for png in pngs {
        let image = decode_png(&std::fs::read(png.unwrap().path()).unwrap());
        assert_eq!(image.width(), 800);
    }
}
