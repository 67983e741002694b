//! A private `redis-server` for a first run: with no `KILN_REDIS_URL` and nothing answering on the
//! default address, `kiln serve` starts one, with its data (AOF on) in Kiln's data dir, listening only on
//! a unix socket there. It is shut down cleanly (its AOF flushed) when Kiln exits.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

pub struct EmbeddedRedis {
    child: Child,
    pub url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("no `redis-server` on PATH ({0})")]
    NotInstalled(std::io::Error),
    #[error("could not prepare {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("redis-server started but did not answer on {0} within 10 s")]
    NoAnswer(String),
    #[error("redis-server exited at once with {0}; see {1}")]
    Exited(std::process::ExitStatus, PathBuf),
}

impl EmbeddedRedis {
    /// The URL the embedded server listens on for `data_dir`, whether or not it is running.
    pub fn url_for(data_dir: &Path) -> String {
        format!("redis+unix://{}", data_dir.join("redis").join("redis.sock").display())
    }

    pub async fn start(data_dir: &Path) -> Result<Self, EmbedError> {
        let dir = std::path::absolute(data_dir.join("redis")).map_err(|source| EmbedError::DataDir {
            path: data_dir.join("redis"),
            source,
        })?;
        std::fs::create_dir_all(&dir).map_err(|source| EmbedError::DataDir {
            path: dir.clone(),
            source,
        })?;
        let socket = dir.join("redis.sock");
        let log = dir.join("redis.log");
        let child = Command::new("redis-server")
            .arg("--port")
            .arg("0")
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--unixsocketperm")
            .arg("700")
            .arg("--dir")
            .arg(&dir)
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--maxmemory-policy",
                "noeviction",
            ])
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(EmbedError::NotInstalled)?;
        let mut server = Self {
            child,
            url: format!("redis+unix://{}", socket.display()),
        };
        let client = redis::Client::open(server.url.as_str()).map_err(|_| EmbedError::NoAnswer(server.url.clone()))?;
        for _ in 0..100 {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(EmbedError::Exited(status, log));
            }
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
            {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(EmbedError::NoAnswer(server.url))
    }

    /// Asks the server to flush its AOF and exit, then waits for it.
    pub async fn shutdown(mut self) {
        if let Ok(client) = redis::Client::open(self.url.as_str())
            && let Ok(mut conn) = client.get_multiplexed_async_connection().await
        {
            // The server closes the connection as it exits, so an error here is the expected answer.
            let _ = redis::cmd("SHUTDOWN").query_async::<()>(&mut conn).await;
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
