//! `kiln tenant add|set|list|remove`: operator commands on tenants, straight against Redis (the same
//! operations as the admin routes under `/v1/tenants`).

use crate::auth::add_tenant;
use crate::config::TenantCommand;
use crate::job::from_millis;
use crate::store::Store;
use anyhow::bail;

pub async fn run(store: &Store, command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Add { name, quotas } => {
            let key = add_tenant(store, &name, quotas.into()).await?;
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
                    "{}\tcreated {}\tmax-queued {}\tmax-running {}\tmax-per-second {}\tmax-bytes {}",
                    tenant.name,
                    from_millis(tenant.created_at),
                    show(q.max_queued.map(|n| n.to_string())),
                    show(q.max_running.map(|n| n.to_string())),
                    show(q.max_per_second.map(|n| n.to_string())),
                    show(q.max_bytes.map(|n| n.to_string())),
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
