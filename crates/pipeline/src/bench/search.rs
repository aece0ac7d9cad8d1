//! `shopfuse bench search`: a generated catalogue of golden products (each with its Taobao,
//! JD, Amazon and own-shop titles) indexed and queried at each size.

use rand::seq::IndexedRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shopfuse_core::{Encoder, Progress};
use shopfuse_generate::catalog::{build_catalogue, Product};
use shopfuse_search::bench::{bench_search, SearchBench};
use shopfuse_search::document::{document, Fields, LearnedAliases, Offer};
use shopfuse_search::ProductDocument;

use crate::PipelineError;

fn product_document(i: usize, p: &Product, rng: &mut ChaCha8Rng) -> ProductDocument {
    let offer = |platform: &str, title: String, factor: f64| Offer {
        platform: platform.to_string(),
        listing_id: format!("{platform}-{i}"),
        title,
        price_base: Some((p.price_cny * factor * 100.0).round() / 100.0),
        stock: Some((i % 37) as i64),
    };
    let offers = vec![
        offer("taobao", p.title_taobao(rng), 0.97),
        offer("jd", p.title_jd(rng), 1.0),
        offer("amazon", p.title_amazon(rng), 1.05),
        offer("own_shop", p.title_own(), 1.0),
    ];
    document(
        format!("GP{i:07}"),
        Fields {
            title: Some(p.title_own()),
            brand: Some(p.brand_en.to_string()),
            category: Some(p.category_en().to_string()),
            model_code: Some(p.model_code.clone()),
            color: p.colour.map(|c| c.0.to_lowercase()),
            capacity: p.capacity.map(str::to_string),
            min_price_base: None,
        },
        offers,
        &LearnedAliases::default(),
    )
}

/// One [`SearchBench`] per size. Each product's vector is its own-shop title's (one encoding
/// per product keeps the bench about search, not the encoder); `queries` are drawn from the
/// titles in both languages.
pub fn bench_search_sizes(
    sizes: &[usize],
    queries: usize,
    encoder: &dyn Encoder,
    progress: &dyn Progress,
) -> Result<Vec<SearchBench>, PipelineError> {
    let mut out = Vec::new();
    for &n in sizes {
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        let products = build_catalogue(n, &mut rng);
        let mut docs: Vec<ProductDocument> = products
            .iter()
            .enumerate()
            .map(|(i, p)| product_document(i, p, &mut rng))
            .collect();
        progress.start(&format!("encoding {n} titles"), n as u64);
        for chunk in docs.chunks_mut(1024) {
            let texts: Vec<String> = chunk
                .iter()
                .map(|d| d.title.clone().unwrap_or_default())
                .collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let v = encoder.encode(&refs)?;
            for (j, d) in chunk.iter_mut().enumerate() {
                d.vector = v.row(j).to_vec();
            }
            progress.advance(chunk.len() as u64);
        }
        progress.finish();
        let query_texts: Vec<String> = (0..queries)
            .map(|i| {
                let p = products.choose(&mut rng).expect("products");
                match i % 3 {
                    0 => p.title_taobao(&mut rng),
                    1 => format!("{} {} {}", p.series, p.model, p.colour.map_or("", |c| c.0)),
                    _ => format!(
                        "{} {} {}",
                        p.brand_zh,
                        p.model,
                        p.colour.map_or("", |c| c.1)
                    ),
                }
            })
            .collect();
        let refs: Vec<&str> = query_texts.iter().map(String::as_str).collect();
        let vectors = encoder.encode(&refs)?;
        out.push(bench_search(docs, &query_texts, &vectors)?);
    }
    Ok(out)
}
