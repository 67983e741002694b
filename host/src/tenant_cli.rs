//! `kiln tenant add|set|list|remove|rotate`: operator commands on tenants, straight against Redis (the same
//! operations as the admin routes under `/v1/tenants`).

use crate::auth::{add_tenant, rotate_key};
use crate::config::TenantCommand;
use crate::job::from_millis;
use crate::store::Store;
use anyhow::bail;
use std::time::Duration;

pub async fn run(store: &Store, command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Add { name, quotas } => {
            let key = add_tenant(store, &name, quotas.into()).await?;
            eprintln!("kiln: added tenant `{name}`; its API key follows (it is shown only now):");
            println!("{key}");
        }
        TenantCommand::Set { name, quotas } => {
            let quotas: crate::store::TenantQuotas = quotas.into();
            if let Some(problem) = quotas.problem() {
                bail!("{problem}");
            }
            if !store.set_tenant_quotas(&name, &quotas).await? {
                bail!("no tenant named `{name}`");
            }
            println!("kiln: set the quotas of tenant `{name}`");
        }
        TenantCommand::List => {
            let show = |limit: Option<String>| limit.unwrap_or_else(|| "default".into());
            for tenant in store.tenants().await? {
                let q = tenant.quotas;
                let kind_running: Vec<String> = q
                    .kind_running
                    .iter()
                    .map(|(k, n)| format!("\tkind-running {k}={n}"))
                    .collect();
                println!(
                    "{}\tid {}\tcreated {}\tmax-queued {}\tmax-running {}\tmax-per-second {}\tmax-bytes {}{}",
                    tenant.name,
                    tenant.id,
                    from_millis(tenant.created_at),
                    show(q.max_queued.map(|n| n.to_string())),
                    show(q.max_running.map(|n| n.to_string())),
                    show(q.max_per_second.map(|n| n.to_string())),
                    show(q.max_bytes.map(|n| n.to_string())),
                    kind_running.concat(),
                );
            }
        }
        TenantCommand::Remove { name } => {
            let Some(jobs) = store.remove_tenant(&name).await? else {
                bail!("no tenant named `{name}`");
            };
            println!("kiln: removed tenant `{name}`, its keys and its {jobs} jobs");
        }
        TenantCommand::Rotate { name, grace_secs } => {
            let Some(key) = rotate_key(store, &name, Duration::from_secs(grace_secs)).await? else {
                bail!("no tenant named `{name}`");
            };
            eprintln!(
                "kiln: new API key of tenant `{name}` follows (shown only now); the old key works for {grace_secs} s more:"
            );
            println!("{key}");
        }
    }
    Ok(())
}
