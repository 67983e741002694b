//! One connection type for a single Redis and for a Redis Cluster, chosen by the URL:
//! `redis://`, `rediss://` or `redis+unix://` for one server, `redis+cluster://[user:pass@]host:port,host:port`
//! for a cluster (any reachable nodes; the client discovers the rest). Every key shares the hash tag
//! `{kiln}`, so scripts and pipelines always address one slot and work the same on both.

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use std::time::Duration;

pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// Where Kiln's Redis is.
#[derive(Clone)]
pub enum Target {
    Single(redis::Client),
    /// Boxed: the cluster client is twice the size of the single one, and there is one per process. With
    /// a plain client per node named in the URL, for pub/sub (a cluster delivers PUBLISH on every node).
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
            return Ok(Self::Single(redis::Client::open(url)?));
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
