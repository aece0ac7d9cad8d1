//! `shopfuse serve` (the HTTP API) and `shopfuse keys …` (who may call it).

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use shopfuse_serve::{KeyStore, Role, ServeOptions};

use crate::{chrono_now, open, print_json, Cli};

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port and prints it).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Requests per second each API key may make (past it: 429 with Retry-After).
    #[arg(long, default_value_t = ServeOptions::default().requests_per_second_per_key)]
    rate_limit: u32,
}

pub fn serve(cli: &Cli, args: &ServeArgs) -> Result<ExitCode> {
    let project = open(&cli.project)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let json = cli.json;
    let options = ServeOptions {
        requests_per_second_per_key: args.rate_limit,
    };
    runtime.block_on(shopfuse_serve::serve(&project, args.addr, &options, |addr, index| {
        if json {
            let ready = serde_json::json!({
                "addr": addr.to_string(), "version": index.version,
                "products": index.products.len(), "customers": index.customer_count(),
            });
            println!("{ready}");
        } else {
            println!(
                "serving version {} ({} golden products, {} customers): dashboard at http://{addr}/ (sign in with a key from `shopfuse keys create`), API at http://{addr}/api/v1 — OpenAPI at /api/v1/openapi.json; Ctrl-C stops",
                index.version,
                index.products.len(),
                index.customer_count()
            );
        }
    }))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct EraseArgs {
    /// The unified customer id (CU…), as `GET /api/v1/accounts/PLATFORM/ID` or the
    /// customer_accounts table gives it.
    #[arg(long)]
    customer: String,
}

pub fn erase(cli: &Cli, args: &EraseArgs) -> Result<ExitCode> {
    let project = open(&cli.project)?;
    let actor = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    let Some(erasure) = shopfuse_serve::erase_offline(&project, &args.customer, &actor)? else {
        anyhow::bail!(
            "no customer {:?} in the committed tables (look it up in customer_accounts)",
            args.customer
        );
    };
    if cli.json {
        print_json(&erasure)?;
    } else {
        let rows: u64 = erasure.rows_removed.values().sum();
        println!(
            "erased {} ({} accounts): {rows} rows from {} tables, {} logged events; committed as version {}",
            erasure.customer_id,
            erasure.accounts,
            erasure.rows_removed.len(),
            erasure.events_removed,
            erasure.version
        );
        for (table, n) in &erasure.rows_removed {
            println!("  {table:<24} {n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create an API key and print it — the only time it is shown; the project keeps its hash.
    Create {
        #[arg(long, value_enum)]
        role: RoleArg,
        /// A name for the key (shown in the audit log); default `ROLE-N`.
        #[arg(long)]
        name: Option<String>,
    },
    /// The keys, their roles and whether they are revoked (never the keys themselves).
    List,
    /// Revoke a key by name; a running server refuses it within a second.
    Revoke { name: String },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Products and aggregates only.
    Viewer,
    /// Per-customer data, pseudonymised.
    Analyst,
    /// Everything, and the endpoints that change data.
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Analyst => Role::Analyst,
            RoleArg::Admin => Role::Admin,
        }
    }
}

#[derive(Serialize)]
struct CreatedKey {
    name: String,
    role: Role,
    key: String,
}

pub fn keys(cli: &Cli, command: &KeysCommand) -> Result<ExitCode> {
    let project = open(&cli.project)?;
    let path = KeyStore::path(&project);
    match command {
        KeysCommand::Create { role, name } => {
            let role = Role::from(*role);
            let name = match name {
                Some(name) => name.clone(),
                None => KeyStore::load(&path)?.next_name(role),
            };
            let key = KeyStore::create(&path, &name, role, &chrono_now())?;
            if cli.json {
                print_json(&CreatedKey { name, role, key })?;
            } else {
                println!("{key}");
                eprintln!("created {role} key {name:?}; it is not shown again. Call the API with `Authorization: Bearer {key}`");
            }
        }
        KeysCommand::List => {
            let store = KeyStore::load(&path)?;
            if cli.json {
                print_json(&store.keys)?;
            } else {
                for k in &store.keys {
                    let state = k
                        .revoked_at
                        .as_deref()
                        .map_or("active".to_string(), |t| format!("revoked {t}"));
                    println!(
                        "{:<20} {:<8} created {}  {state}",
                        k.name, k.role, k.created_at
                    );
                }
            }
        }
        KeysCommand::Revoke { name } => {
            KeyStore::revoke(&path, name, &chrono_now())?;
            eprintln!("revoked {name:?}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
