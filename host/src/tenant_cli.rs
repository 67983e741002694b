//! `kiln tenant add|list|remove`: operator commands on tenants, straight against Redis.

use crate::auth::{hash_key, is_valid_tenant_name, new_key};
use crate::config::TenantCommand;
use crate::job::{from_millis, now_millis};
use crate::store::{Store, TenantEntry};
use anyhow::bail;

pub async fn run(store: &Store, command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Add { name, quotas } => {
            if !is_valid_tenant_name(&name) {
                bail!("tenant name `{name}` must be 1-64 characters of a-z, 0-9, `-` and `_`");
            }
            let key = new_key();
            let entry = TenantEntry {
                name: name.clone(),
                key_hash: hash_key(&key),
                created_at: now_millis(),
                quotas: quotas.into(),
            };
            if !store.add_tenant(&entry).await? {
                bail!("tenant `{name}` exists already (remove it first to issue a new key)");
            }
            eprintln!("kiln: added tenant `{name}`; its API key follows (it is shown only now):");
            println!("{key}");
        }
        TenantCommand::Set { name, quotas } => {
            if !store.set_tenant_quotas(&name, quotas.into()).await? {
                bail!("no tenant named `{name}`");
            }
            println!("kiln: set the quotas of tenant `{name}`");
        }
        TenantCommand::List => {
            let show = |limit: Option<String>| limit.unwrap_or_else(|| "default".into());
            for tenant in store.tenants().await? {
                let q = tenant.quotas;
                println!(
                    "{}\tcreated {}\tmax-queued {}\tmax-running {}\tmax-per-second {}",
                    tenant.name,
                    from_millis(tenant.created_at),
                    show(q.max_queued.map(|n| n.to_string())),
                    show(q.max_running.map(|n| n.to_string())),
                    show(q.max_per_second.map(|n| n.to_string())),
                );
            }
        }
        TenantCommand::Remove { name } => {
            if !store.remove_tenant(&name).await? {
                bail!("no tenant named `{name}`");
            }
            println!("kiln: removed tenant `{name}`");
        }
    }
    Ok(())
}
