//! Kiln against a Redis that needs an ACL user and password, and one reached over TLS (`rediss://`,
//! with the CA given in `SSL_CERT_FILE`): jobs run through both, and a wrong password or an unknown CA
//! stops start-up with a message that says so (and never shows the password).

use crate::common::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;

const PASSWORD: &str = "s3cret-pass";

/// Runs a plot job to the end through `kiln` and checks the PNG it returns.
async fn plot_runs(kiln: &Kiln) {
    let plot = json!({"params": {"title": "through", "width": 320, "height": 200,
        "series": [{"x": [0, 1, 2], "y": [0, 2, 1]}]}});
    let response = submit_plot_and_wait(kiln, &plot).await;
    let image = decode_png(&response.bytes().await.unwrap());
    assert_eq!((image.width(), image.height()), (320, 200));
}

/// `kiln api` against `url` with `env`, expected to fail at start; returns its stderr.
fn failed_start(url: &str, env: &[(&str, &str)]) -> String {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(kiln_bin())
        .args(["api", "--dev", "--listen", "127.0.0.1:0"])
        .env("KILN_REDIS_URL", url)
        .env("KILN_DATA_DIR", data.path())
        .env("KILN_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!output.status.success(), "kiln started against {url}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn an_acl_user_and_password_in_the_url_work_and_a_wrong_password_fails_start_clearly() {
    let port = free_port().to_string();
    let password = format!(">{PASSWORD}");
    // Each word of an ACL rule a separate argument: redis-server quotes an argument with spaces whole.
    let acl = [
        "--user", "default", "off", "--user", "kiln", "on", &password, "~*", "&*", "+@all",
    ];
    let _redis = Redis::start_with_query(
        &[&["--port", &port][..], &acl[..]].concat(),
        &format!("?user=kiln&pass={PASSWORD}"),
    );
    let kiln = Kiln::serve_at(&format!("redis://kiln:{PASSWORD}@127.0.0.1:{port}"), &[]);
    plot_runs(&kiln).await;

    let wrong = failed_start(&format!("redis://kiln:not-the-password@127.0.0.1:{port}"), &[]);
    assert!(wrong.contains("refused the credentials"), "{wrong}");
    assert!(
        !wrong.contains("not-the-password"),
        "the password is never shown: {wrong}"
    );
    let none = failed_start(&format!("redis://127.0.0.1:{port}"), &[]);
    assert!(none.contains("refused the credentials"), "{none}");
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made with `openssl` in `dir`.
fn make_certificates(dir: &Path) {
    self_signed_certificate(dir, "ca", "/CN=Kiln test CA", "2", &[]);
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
}

#[tokio::test]
async fn a_job_runs_over_rediss_with_the_ca_from_ssl_cert_file() {
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let file = |name: &str| certs.path().join(name).to_str().unwrap().to_owned();
    let port = free_port().to_string();
    let (cert, key, ca) = (file("server.pem"), file("server.key"), file("ca.pem"));
    // The harness's own socket stays plain; Kiln comes in over TLS on the TCP port.
    let _redis = Redis::start_with(&[
        "--tls-port",
        &port,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
    ]);
    let url = format!("rediss://127.0.0.1:{port}");
    let kiln = Kiln::start_capturing("serve", &url, &[], &[("SSL_CERT_FILE", &ca)], false);
    plot_runs(&kiln).await;

    // Without the CA, the server's certificate is not trusted: no start.
    let untrusted = failed_start(&url, &[("SSL_CERT_FILE", "/dev/null")]);
    assert!(
        untrusted.contains("cannot reach Redis at rediss://127.0.0.1"),
        "{untrusted}"
    );
}
