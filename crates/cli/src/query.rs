//! `shopfuse sql` and `shopfuse tables`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use shopfuse_query::QueryEngine;

use clap::Args;
use shopfuse_core::table::dictionary_markdown;
use shopfuse_pipeline::Pipeline;

use crate::{open, print_json, Cli};

#[derive(Args)]
pub struct TablesArgs {
    /// Print the data dictionary (every declared table: columns, types, docs) instead of row
    /// counts; needs no project.
    #[arg(long)]
    schema: bool,
    /// With --schema: as Markdown (what docs/tables.md holds).
    #[arg(long, requires = "schema")]
    markdown: bool,
}

pub fn sql(cli: &Cli, query: &str) -> Result<ExitCode> {
    let project = open(&cli.project)?;
    let engine = QueryEngine::open(&project)?;
    let result = engine
        .sql(query)
        .with_context(|| format!("query failed: {query}"))?;
    if cli.json {
        print_json(&result.to_json_rows()?)?;
    } else {
        println!("{}", result.to_pretty()?);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn tables(cli: &Cli, args: &TablesArgs) -> Result<ExitCode> {
    if args.schema {
        return schema(cli, args.markdown);
    }
    let project = open(&cli.project)?;
    let counts = QueryEngine::open(&project)?.table_counts()?;
    if cli.json {
        let map: serde_json::Map<String, serde_json::Value> =
            counts.into_iter().map(|(t, n)| (t, n.into())).collect();
        print_json(&map)?;
    } else {
        for (t, n) in counts {
            println!("{t:<24} {n:>10}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The data dictionary from the table declarations.
fn schema(cli: &Cli, markdown: bool) -> Result<ExitCode> {
    let dictionary = Pipeline::standard().dictionary();
    if markdown {
        print!("{}", dictionary_markdown(&dictionary));
        return Ok(ExitCode::SUCCESS);
    }
    if cli.json {
        #[derive(serde::Serialize)]
        struct Entry<'a> {
            written_by: &'a str,
            #[serde(flatten)]
            table: &'a shopfuse_core::table::TableDef,
        }
        let entries: Vec<Entry> = dictionary
            .iter()
            .map(|(by, table)| Entry {
                written_by: by,
                table,
            })
            .collect();
        print_json(&entries)?;
        return Ok(ExitCode::SUCCESS);
    }
    for (by, t) in &dictionary {
        println!("{} (written by {by}): {}", t.name, t.doc_text());
        for c in t.columns.iter() {
            let null = if c.nullable { " null" } else { "" };
            let doc: Vec<&str> = c.doc.split_whitespace().collect();
            println!(
                "  {:<24} {:<20} {}",
                c.name,
                format!("{}{null}", c.ty.as_str()),
                doc.join(" ")
            );
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}
