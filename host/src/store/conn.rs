//! One connection type for a single Redis and for a Redis Cluster, chosen by the URL:
//! `redis://`, `rediss://` or `redis+unix://` for one server, `redis+cluster://[user:pass@]host:port,host:port`
//! for a cluster (any reachable nodes; the client discovers the rest). Every key shares the hash tag
//! `{kiln}`, so scripts and pipelines always address one slot and work the same on both.
//!
//! AUTH: an ACL user and password in the URL (`redis://USER:PASSWORD@host:port`, or `?user=&pass=` on a
//! `redis+unix://` URL). TLS: `rediss://`, with rustls; the server's certificate is checked against the
//! system's roots, or the CA bundle that `SSL_CERT_FILE` names.

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use std::time::Duration;

pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// Where Kiln's Redis is.
#[derive(Clone)]
pub enum Target {
    /// Boxed, as the cluster's is: with TLS support a client is ~240 bytes, and there is one per process.
    Single(Box<redis::Client>),
    /// With a plain client per node named in the URL, for pub/sub (a cluster delivers PUBLISH on every node).
    Cluster(Box<ClusterClient>, Vec<redis::Client>),
}

/// A connection to the [`Target`]; cheap to clone (all variants multiplex).
#[derive(Clone)]
pub enum Conn {
    /// Reconnects by itself; for everything but blocking commands.
    Managed(ConnectionManager),
    /// A plain connection of its own, for a blocking pop that must not stall shared traffic.
    Dedicated(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Target {
    pub fn parse(url: &str) -> RedisResult<Self> {
        let Some(rest) = url.strip_prefix(CLUSTER_SCHEME) else {
            return Ok(Self::Single(Box::new(redis::Client::open(url)?)));
        };
        let (userinfo, hosts) = match rest.rsplit_once('@') {
            Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
            None => (String::new(), rest),
        };
        let nodes: Vec<String> = hosts
            .trim_end_matches('/')
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|host| format!("redis://{userinfo}{host}"))
            .collect();
        if nodes.is_empty() {
            return Err((
                redis::ErrorKind::InvalidClientConfig,
                "a redis+cluster:// URL names no nodes",
            )
                .into());
        }
        let plain = nodes
            .iter()
            .map(|node| redis::Client::open(node.as_str()))
            .collect::<RedisResult<_>>()?;
        let client = ClusterClient::builder(nodes)
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(10))
            .retries(3)
            .build()?;
        Ok(Self::Cluster(Box::new(client), plain))
    }

    /// The connection for ordinary traffic.
    pub async fn shared(&self) -> RedisResult<Conn> {
        match self {
            Self::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(Duration::from_secs(5)))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_secs(2));
                Ok(Conn::Managed(client.get_connection_manager_with_config(config).await?))
            }
            Self::Cluster(client, _) => Ok(Conn::Cluster(client.get_async_connection().await?)),
        }
    }

    /// A connection of its own, for blocking commands that wait up to `longest_wait`.
    pub async fn dedicated(&self, longest_wait: Duration) -> RedisResult<Conn> {
        match self {
            Self::Single(client) => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(longest_wait + Duration::from_secs(5)));
                Ok(Conn::Dedicated(
                    client.get_multiplexed_async_connection_with_config(&config).await?,
                ))
            }
            Self::Cluster(client, _) => Ok(Conn::Cluster(client.get_async_connection().await?)),
        }
    }

    /// A pub/sub connection; on a cluster to node `attempt` (mod the nodes named), so that reconnecting
    /// goes round them.
    pub async fn pubsub(&self, attempt: usize) -> RedisResult<redis::aio::PubSub> {
        let client = match self {
            Self::Single(client) => client,
            Self::Cluster(_, nodes) => &nodes[attempt % nodes.len()],
        };
        client.get_async_pubsub().await
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Managed(conn) => conn.req_packed_command(cmd),
            Conn::Dedicated(conn) => conn.req_packed_command(cmd),
            Conn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Managed(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Dedicated(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Managed(conn) => conn.get_db(),
            Conn::Dedicated(conn) => conn.get_db(),
            Conn::Cluster(conn) => conn.get_db(),
        }
    }
}

/// `url` with its password (in the user info or a `pass=` query pair) replaced by `***`: for messages.
pub fn redacted_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let authority = match authority.rsplit_once('@') {
                Some((userinfo, hosts)) => match userinfo.split_once(':') {
                    Some((user, _)) => format!("{user}:***@{hosts}"),
                    None => format!("{userinfo}@{hosts}"),
                },
                None => authority.to_owned(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => head.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some(("pass" | "password", _)) => format!("{}=***", pair.split('=').next().unwrap_or("pass")),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{out}?{}", pairs.join("&"));
    }
    out
}

/// Whether Redis refused the credentials: a wrong user or password, or none sent to a Redis that wants them.
pub fn refused_credentials(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::AuthenticationFailed
        || ["WRONGPASS", "NOAUTH", "NOPERM"]
            .iter()
            .any(|code| e.code() == Some(*code) || e.to_string().contains(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redacted_url("redis://kiln:s3cret@redis:6379/0"),
            "redis://kiln:***@redis:6379/0"
        );
        assert_eq!(redacted_url("rediss://:s3cret@redis"), "rediss://:***@redis");
        assert_eq!(redacted_url("redis://redis:6379"), "redis://redis:6379");
        assert_eq!(
            redacted_url("redis+cluster://u:p@a:1,b:2"),
            "redis+cluster://u:***@a:1,b:2"
        );
        assert_eq!(
            redacted_url("redis+unix:///run/r.sock?user=kiln&pass=s3cret&db=1"),
            "redis+unix:///run/r.sock?user=kiln&pass=***&db=1"
        );
    }
}
