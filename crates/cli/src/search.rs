//! `shopfuse search` and `shopfuse ask`.

use std::process::ExitCode;

use anyhow::Result;
use shopfuse_core::Encoder;
use shopfuse_search::{Filters, Mode, SearchRequest, SearchResults};

use crate::Cli;

#[derive(clap::Args)]
pub struct SearchArgs {
    /// What to look for, in Chinese, English or both ("华为 mate 50 紫色 256G").
    query: String,
    /// A filter: brand=, category=, platform=, color=, capacity=, price=MIN..MAX, price<=MAX,
    /// price>=MIN or in_stock. Repeat for several.
    #[arg(long = "filter", short = 'f')]
    filters: Vec<String>,
    /// Results to print.
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// lexical (BM25 only), dense (vectors only) or hybrid (both, fused).
    #[arg(long, default_value = "hybrid", value_parser = ["lexical", "dense", "hybrid"])]
    mode: String,
    /// Keep colour and capacity words as text instead of turning them into filters.
    #[arg(long)]
    no_attributes: bool,
}

/// The encoder's vector of one text; `None` (with a warning) when the model is not there,
/// so a search still answers lexically.
pub fn query_vector(encoder: Option<&dyn Encoder>, text: &str) -> Result<Option<Vec<f32>>> {
    let Some(encoder) = encoder else {
        return Ok(None);
    };
    Ok(Some(encoder.encode(&[text])?.row(0).to_vec()))
}

pub fn load_encoder(project: &shopfuse_core::Project) -> Option<Box<dyn Encoder>> {
    match shopfuse_pipeline::project_encoder(project) {
        Ok(e) => Some(Box::new(e)),
        Err(e) => {
            eprintln!("warning: {e} — searching lexically only (run scripts/fetch-models.sh)");
            None
        }
    }
}

pub fn search(cli: &Cli, args: &SearchArgs) -> Result<ExitCode> {
    let project = crate::open(&cli.project)?;
    let mut request = SearchRequest::new(args.query.clone());
    let mut filters = Filters::default();
    for f in &args.filters {
        filters.add(f)?;
    }
    request.filters = filters;
    request.limit = args.limit;
    request.mode = args.mode.parse::<Mode>()?;
    request.attributes = !args.no_attributes;
    let (index, _) = shopfuse_search::open_project(&project)?;
    let encoder = match request.mode {
        Mode::Lexical => None,
        _ => load_encoder(&project),
    };
    let vector = query_vector(encoder.as_deref(), &request.query)?;
    let results = index.search(&request, vector.as_deref())?;
    if cli.json {
        crate::print_json(&results)?;
    } else {
        print_results(&results, &project.config.project.base_currency);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_results(r: &SearchResults, currency: &str) {
    let u = &r.understood;
    let mut understood = format!("text {:?}", u.text);
    if let Some(c) = &u.color {
        understood.push_str(&format!(", color={c}"));
    }
    if let Some(c) = &u.capacity {
        understood.push_str(&format!(", capacity={c}"));
    }
    println!("{:?} → {understood} · {} candidates", r.query, r.candidates);
    for n in &r.notes {
        println!("note: {n}");
    }
    if r.hits.is_empty() {
        println!("no product matches");
    }
    for (i, h) in r.hits.iter().enumerate() {
        println!(
            "\n{:>2}. {} {}  [{} · {} · {}]  from {} {currency}, stock {}",
            i + 1,
            h.golden_id,
            h.title.as_deref().unwrap_or("(untitled)"),
            h.brand.as_deref().unwrap_or("-"),
            h.color.as_deref().unwrap_or("-"),
            h.capacity.as_deref().unwrap_or("-"),
            h.min_price_base.map_or("?".into(), |p| format!("{p:.2}")),
            h.stock.map_or("?".into(), |s| s.to_string()),
        );
        for o in &h.best_offers {
            println!(
                "      {:<8} {:>10} {currency}  stock {:>5}  {} ({})",
                o.platform,
                o.price_base.map_or("?".into(), |p| format!("{p:.2}")),
                o.stock.map_or("?".into(), |s| s.to_string()),
                o.title,
                o.listing_id
            );
        }
        let w = &h.why;
        let mut why = Vec::new();
        if let Some(rank) = w.lexical_rank {
            why.push(format!(
                "lexical #{rank} (BM25 {:.2}: {})",
                w.bm25.unwrap_or_default(),
                w.matched_terms
                    .iter()
                    .chain(&w.fuzzy_terms)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        if let Some(rank) = w.dense_rank {
            why.push(format!(
                "vector #{rank} (cosine {:.3})",
                w.cosine.unwrap_or_default()
            ));
        }
        if !w.filters.is_empty() {
            why.push(format!("filters {}", w.filters.join(", ")));
        }
        println!("      why: {}", why.join(" · "));
    }
    let f = &r.facets;
    let show = |name: &str, m: &std::collections::BTreeMap<String, usize>| {
        if !m.is_empty() {
            let mut v: Vec<_> = m.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let parts: Vec<String> = v.iter().take(6).map(|(k, n)| format!("{k} {n}")).collect();
            println!("  {name}: {}", parts.join(", "));
        }
    };
    if r.candidates > 0 {
        println!("\nfacets over the {} candidates:", r.candidates);
        show("brand", &f.brand);
        show("category", &f.category);
        show("platform", &f.platform);
        show("color", &f.color);
        show("capacity", &f.capacity);
    }
}

pub fn print_summary(s: &shopfuse_search::SyncReport) {
    let how = if s.unchanged {
        "index unchanged".to_string()
    } else if s.rebuilt {
        "index built".to_string()
    } else {
        format!(
            "index updated: {} added, {} changed, {} removed",
            s.added, s.updated, s.removed
        )
    };
    println!("\nsearch: {} products · {how}", s.documents);
}

#[derive(clap::Args)]
pub struct AskArgs {
    /// The customer's question, in Chinese or English.
    question: String,
    /// The unified customer (CU…) asking: needed for order questions; the read of their
    /// orders is audited.
    #[arg(long)]
    customer: Option<String>,
}

/// The project's assistant parts: index, policies, encoder.
pub struct AssistantParts {
    pub index: shopfuse_search::SearchIndex,
    pub policies: Vec<shopfuse_search::assistant::PolicySection>,
    pub encoder: Option<Box<dyn Encoder>>,
    pub currency: String,
    pub classifier: shopfuse_search::assistant::IntentClassifier,
}

impl AssistantParts {
    pub fn load(project: &shopfuse_core::Project) -> Result<Self> {
        let (index, _) = shopfuse_search::open_project(project)?;
        Ok(AssistantParts {
            index,
            policies: shopfuse_search::assistant::load_policies(&project.root)?,
            encoder: load_encoder(project),
            currency: project.config.project.base_currency.clone(),
            classifier: shopfuse_search::assistant::IntentClassifier::shipped(),
        })
    }

    pub fn assistant(&self) -> shopfuse_search::assistant::Assistant<'_> {
        shopfuse_search::assistant::Assistant {
            index: &self.index,
            classifier: &self.classifier,
            policies: &self.policies,
            encoder: self.encoder.as_deref(),
            currency: self.currency.clone(),
        }
    }
}

pub fn ask(cli: &Cli, args: &AskArgs) -> Result<ExitCode> {
    let project = crate::open(&cli.project)?;
    let parts = AssistantParts::load(&project)?;
    let store = shopfuse_core::TableStore::open(&project)?;
    let read = |t: &str, cols: &[&str]| store.read_columns(t, cols);
    let orders = |customer: &str| {
        crate::propensity::audit_cli(&project, "shopfuse ask", customer, Some("orders".into()))
            .map_err(|e| shopfuse_search::SearchError::Request(format!("{e:#}")))?;
        shopfuse_search::assistant::customer_orders(&read, customer)
    };
    let answer = parts
        .assistant()
        .answer(&args.question, args.customer.as_deref(), &orders)?;
    if cli.json {
        crate::print_json(&answer)?;
    } else {
        println!("{}", answer.text);
        println!(
            "\nintent: {} ({:.0} %)",
            answer.intent.name(),
            100.0 * answer.confidence
        );
        for c in &answer.citations {
            let origin = c
                .origin
                .as_deref()
                .map(|o| format!(" ({o})"))
                .unwrap_or_default();
            println!("source: {} {}{origin}", c.source, c.key);
        }
    }
    Ok(if answer.found {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

#[derive(clap::Args)]
pub struct EvalSearchArgs {
    /// A QBQTC folder (dev.json): grade (query, title) relevance instead of ranking the
    /// project's query set.
    #[arg(long)]
    data: Option<std::path::PathBuf>,
    /// The truth folder (default: truth/ in the project).
    #[arg(long)]
    truth: Option<std::path::PathBuf>,
    /// Hybrid fusion weights LEXICAL,DENSE,TITLE (tune on a development project only).
    #[arg(long)]
    weights: Option<String>,
}

pub fn eval_search(cli: &Cli, args: &EvalSearchArgs) -> Result<ExitCode> {
    if let Some(dir) = &args.data {
        return eval_qbqtc(cli, dir);
    }
    let project = crate::open(&cli.project)?;
    let (index, _) = shopfuse_search::open_project(&project)?;
    let encoder = load_encoder(&project);
    let store = shopfuse_core::TableStore::open(&project)?;
    let read = |t: &str, cols: &[&str]| store.read_columns(t, cols);
    let truth = args
        .truth
        .clone()
        .unwrap_or_else(|| project.root.join("truth"));
    let weights = match &args.weights {
        Some(w) => w.parse()?,
        None => Default::default(),
    };
    let e =
        shopfuse_search::eval::evaluate_search(&index, &read, &truth, encoder.as_deref(), weights)?;
    if cli.json {
        crate::print_json(&e)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "search on {} queries ({} skipped: product not in the catalogue), {} products; NDCG@10 · MRR · Recall@10 · wrong variant first",
        e.queries,
        e.skipped,
        index.documents().len()
    );
    let kinds: Vec<&String> = e
        .modes
        .first()
        .map(|m| m.by_kind.keys().collect())
        .unwrap_or_default();
    println!(
        "{:<20} {:>26} {:>26} {:>26}",
        "", "lexical", "dense", "hybrid"
    );
    let row = |name: &str,
               pick: &dyn Fn(
        &shopfuse_search::eval::ModeReport,
    ) -> Option<shopfuse_search::eval::RankingMetrics>| {
        let cells: Vec<String> = e
            .modes
            .iter()
            .map(|m| match pick(m) {
                Some(x) => format!(
                    "{:.3} {:.3} {:.3} {:>3}",
                    x.ndcg_at_10, x.mrr, x.recall_at_10, x.wrong_variant_first
                ),
                None => "-".into(),
            })
            .collect();
        let n = e.modes.first().and_then(pick).map_or(0, |x| x.queries);
        println!(
            "{:<20} {}",
            format!("{name} ({n})"),
            cells.iter().map(|c| format!("{c:>26}")).collect::<String>()
        );
    };
    row("all", &|m| Some(m.overall.clone()));
    for k in kinds {
        row(k, &|m| m.by_kind.get(k).cloned());
    }
    Ok(ExitCode::SUCCESS)
}

fn eval_qbqtc(cli: &Cli, dir: &std::path::Path) -> Result<ExitCode> {
    let path = if dir.is_dir() {
        dir.join("dev.json")
    } else {
        dir.to_path_buf()
    };
    let project_root = cli.project.clone();
    let encoder: Option<Box<dyn Encoder>> =
        match shopfuse_pipeline::usem3_encoder(None, &project_root) {
            Ok(e) => Some(Box::new(e)),
            Err(e) => {
                eprintln!("warning: {e} — lexical score only");
                None
            }
        };
    let bar = crate::Bar::new(cli.quiet);
    let e = shopfuse_search::eval::evaluate_qbqtc(&path, encoder.as_deref(), &bar)?;
    if cli.json {
        crate::print_json(&e)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "QBQTC dev ({} pairs, {}): relevance score → grade 0/1/2 by thresholds chosen in {}-fold cross-validation, out-of-fold figures",
        e.pairs,
        path.display(),
        e.folds
    );
    println!("{:<10} {:>9} {:>9}", "score", "macro-F1", "accuracy");
    for r in &e.reports {
        let w = r
            .dense_weight
            .map(|w| format!("  (dense weight {w:.1})"))
            .unwrap_or_default();
        println!(
            "{:<10} {:>9.1} {:>9.1}{w}",
            r.score,
            100.0 * r.macro_f1,
            100.0 * r.accuracy
        );
    }
    println!(
        "published BERT-base (fine-tuned on 180 k train pairs): dev F1 {:.1} / accuracy {:.1}",
        e.published_bert_base_dev.0, e.published_bert_base_dev.1
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct EvalAskArgs {
    /// The truth folder (default: truth/ in the project).
    #[arg(long)]
    truth: Option<std::path::PathBuf>,
}

pub fn eval_ask(cli: &Cli, args: &EvalAskArgs) -> Result<ExitCode> {
    use shopfuse_identity::customer_accounts as ca;
    let project = crate::open(&cli.project)?;
    let parts = AssistantParts::load(&project)?;
    let store = shopfuse_core::TableStore::open(&project)?;
    let read = |t: &str, cols: &[&str]| store.read_columns(t, cols);
    let accounts = store
        .read_columns(ca::NAME, &[ca::customer_id, ca::platform, ca::account_id])?
        .unwrap_or_default();
    let customer: std::collections::HashMap<(String, String), String> = accounts
        .rows
        .iter()
        .filter_map(|r| {
            Some((
                (
                    accounts.text(r, ca::platform)?,
                    accounts.text(r, ca::account_id)?,
                ),
                accounts.text(r, ca::customer_id)?,
            ))
        })
        .collect();
    let customer_of = |p: &str, a: &str| customer.get(&(p.to_string(), a.to_string())).cloned();
    let orders = |c: &str| shopfuse_search::assistant::customer_orders(&read, c);
    let truth = args
        .truth
        .clone()
        .unwrap_or_else(|| project.root.join("truth"));
    let e = shopfuse_search::eval::evaluate_ask(
        &parts.assistant(),
        &read,
        &truth,
        &customer_of,
        &orders,
    )?;
    if cli.json {
        crate::print_json(&e)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "assistant on {} generated questions: intent accuracy {:.3}, cited-fact accuracy {:.3}",
        e.questions, e.intent_accuracy, e.fact_accuracy
    );
    if let Some(l) = &e.shipped_leave_one_out {
        let used = l.settings.last().expect("the setting in use");
        println!(
            "intent classifier, leave-one-out on the shipped labelled examples: words {:.3}, encoder {:.3}, blend {:.3} (weight {}, temperature {})",
            l.words, used.encoder, used.blend, used.weight, used.temperature
        );
        for s in &l.settings[..l.settings.len() - 1] {
            println!(
                "  weight {:.2} temperature {:.2}: encoder {:.3} blend {:.3}",
                s.weight, s.temperature, s.encoder, s.blend
            );
        }
    }
    println!(
        "{:<18} {:>9} {:>8} {:>8}",
        "intent", "questions", "intent", "fact"
    );
    for (k, a) in &e.by_intent {
        let n = a.questions.max(1) as f64;
        println!(
            "{k:<18} {:>9} {:>8.3} {:>8.3}",
            a.questions,
            a.intent_correct as f64 / n,
            a.fact_correct as f64 / n
        );
    }
    for (q, want, got) in &e.examples_wrong {
        println!("\nwrong: {q}\n  expected {want}\n  answered {got}");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct BenchSearchArgs {
    /// Catalogue sizes (golden products).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    sizes: Vec<usize>,
    /// Queries per size and mode.
    #[arg(long, default_value_t = 1000)]
    queries: usize,
}

pub fn bench_search(cli: &Cli, args: &BenchSearchArgs) -> Result<ExitCode> {
    let encoder = shopfuse_pipeline::usem3_encoder(None, &cli.project)?;
    let bar = crate::Bar::new(cli.quiet);
    if !cli.json {
        println!(
            "search bench: {} thread(s), one query at a time",
            shopfuse_pipeline::bench::threads()
        );
    }
    let mut rows = Vec::new();
    // One size at a time, printed as it finishes: the large ones take minutes.
    for &size in &args.sizes {
        let mut r =
            shopfuse_pipeline::bench::bench_search_sizes(&[size], args.queries, &encoder, &bar)?;
        if !cli.json {
            print_bench(&r[0]);
        }
        rows.append(&mut r);
    }
    if cli.json {
        crate::print_json(&rows)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_bench(r: &shopfuse_search::bench::SearchBench) {
    {
        println!(
            "\n{} products, {} queries: index built in {:.1} s ({:.0} docs/s); dense side {} (recall@10 vs exact {:.3})",
            r.products,
            r.queries,
            r.build_seconds,
            r.build_docs_per_second,
            if r.dense_exact { "exact scan" } else { "HNSW" },
            r.dense_recall_at_10
        );
        println!(
            "  {:<20} {:>10} {:>9} {:>9}",
            "", "queries/s", "p50 ms", "p99 ms"
        );
        for l in r.modes.iter().chain(&r.peers) {
            println!(
                "  {:<20} {:>10.0} {:>9.2} {:>9.2}",
                l.name, l.queries_per_second, l.p50_ms, l.p99_ms
            );
        }
        let (lex, dense, hybrid) = (&r.modes[0], &r.modes[1], &r.modes[2]);
        let (bm25, exact) = (&r.peers[0], &r.peers[1]);
        println!(
            "  ratios: lexical / plain BM25 p50 {:.2}×; dense / exact scan p50 {:.2}×; hybrid / (plain BM25 + exact scan) p50 {:.2}×",
            lex.p50_ms / bm25.p50_ms.max(1e-9),
            dense.p50_ms / exact.p50_ms.max(1e-9),
            hybrid.p50_ms / (bm25.p50_ms + exact.p50_ms).max(1e-9)
        );
    }
}
