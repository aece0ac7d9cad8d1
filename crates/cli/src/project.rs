//! `shopfuse init` and `shopfuse generate`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use shopfuse_generate::GenerateOptions;

use crate::{open, print_json, Cli};

#[derive(Args)]
pub struct GenerateArgs {
    /// Directory to write into (created if missing).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Real-world products (each listed on two to four platforms).
    #[arg(long, default_value_t = GenerateOptions::default().products)]
    products: usize,
    /// People (each holding one to four platform accounts).
    #[arg(long, default_value_t = GenerateOptions::default().customers)]
    customers: usize,
    #[arg(long, default_value_t = GenerateOptions::default().orders)]
    orders: usize,
}

const TEMPLATE: &str = r#"# shopfuse project. Declare one [[sources]] per export; see README.md.
[project]
name = "my-shop"
base_currency = "CNY"

[currency.rates]
USD = 7.2

# [[sources]]
# name = "taobao_orders"
# platform = "taobao"
# kind = "orders"            # products, orders, events, reviews, customers
# path = "exports/taobao/orders-*.csv"
# preset = "taobao"          # taobao, jd, amazon, canonical
# timezone = "Asia/Shanghai"
# currency = "CNY"
# [sources.fields]
# unit_price = { column = "成交价", format = "" }
"#;

pub fn init(dir: &Path) -> Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config = dir.join(shopfuse_core::project::CONFIG_FILE);
    if config.exists() {
        eprintln!("{} exists; leaving it as it is", config.display());
    } else {
        std::fs::write(&config, TEMPLATE)
            .with_context(|| format!("cannot write {}", config.display()))?;
        eprintln!("wrote {}", config.display());
    }
    open(dir)?
        .secret()
        .context("cannot create the project secret")?;
    Ok(ExitCode::SUCCESS)
}

pub fn generate(cli: &Cli, args: &GenerateArgs) -> Result<ExitCode> {
    let options = GenerateOptions {
        seed: args.seed,
        products: args.products,
        customers: args.customers,
        orders: args.orders,
    };
    let started = std::time::Instant::now();
    let summary = shopfuse_generate::generate(&args.out, &options)?;
    if cli.json {
        print_json(&summary)?;
    } else {
        println!(
            "generated {} in {:.1}s: {} products in {} listings, {} people with {} accounts, {} orders ({} fraud), {} events, {} reviews",
            args.out.display(),
            started.elapsed().as_secs_f64(),
            summary.products,
            summary.listings,
            summary.people,
            summary.accounts,
            summary.orders,
            summary.fraud_orders,
            summary.events,
            summary.reviews
        );
        println!(
            "planted {} malformed rows ({:?}); ground truth in {}",
            summary.malformed,
            summary.malformed_by_reason,
            args.out.join("truth").display()
        );
        println!("next: shopfuse -C {} run", args.out.display());
    }
    Ok(ExitCode::SUCCESS)
}
