//! The customer-service assistant: a question in, an answer drawn only from the fused facts,
//! each fact cited.
//!
//! The question's intent is classified ([`intent`]); its facts are retrieved for that
//! intent — golden records and offers through the search index, the customer's orders by
//! their pseudonymous customer id, the policy sections ([`policies`]); the answer is written
//! from them in the question's language. No fact, no answer: when nothing is found the answer
//! says what it looked for and could not find, and `found` is false.
//!
//! An optional [`Generator`] may rephrase the grounded answer (an OpenAI-compatible endpoint
//! the user configures); it is off by default and never needed: the grounded answer is
//! complete on its own.

pub mod intent;
pub mod policies;

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use shopfuse_core::encoder::Encoder;
use shopfuse_core::EntityKind;
use shopfuse_identity::customer_accounts;
use shopfuse_resolve::catalogue::offers;

use crate::document::{ProductDocument, ReadTable};
use crate::index::SearchIndex;
use crate::query::{Filters, SearchRequest};
use crate::SearchError;
pub use intent::{Intent, IntentClassifier};
pub use policies::{language_of, load_policies, PolicySection};

/// One fact an answer rests on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Citation {
    /// Where it is: a table (`golden_products`, `offers`, `clean_orders`) or a policy file.
    pub source: String,
    /// Which row or section: a golden id, `platform/listing_id`, `platform/order_id`, a
    /// section heading.
    pub key: String,
    /// The source file and row of a table row, when it has one.
    pub origin: Option<String>,
}

/// The answer to one question.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub question: String,
    pub language: &'static str,
    pub intent: Intent,
    /// The classifier's posterior for `intent`.
    pub confidence: f64,
    pub text: String,
    pub citations: Vec<Citation>,
    /// False when the facts the question needs were not found.
    pub found: bool,
}

/// Rephrases a grounded answer (an LLM behind an OpenAI-compatible endpoint, say). It gets
/// the question, the grounded answer and its citations, and must not add facts.
pub trait Generator {
    fn rephrase(&self, question: &str, grounded: &Answer) -> Result<String, SearchError>;
}

/// One of a customer's orders, as the assistant tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderFact {
    pub platform: String,
    pub order_id: String,
    pub listing_id: String,
    pub status: Option<String>,
    pub ordered_at: Option<i64>,
    pub amount_base: Option<f64>,
    pub title: Option<String>,
    pub golden_id: Option<String>,
    pub file: Option<String>,
    pub row: Option<i64>,
}

/// Every order of the unified customer `customer_id`, newest first.
pub fn customer_orders(
    read: ReadTable<'_>,
    customer_id: &str,
) -> Result<Vec<OrderFact>, SearchError> {
    let accounts = read(
        customer_accounts::NAME,
        &[
            customer_accounts::customer_id,
            customer_accounts::platform,
            customer_accounts::account_id,
        ],
    )?
    .unwrap_or_default();
    let mine: HashSet<(String, String)> = accounts
        .rows
        .iter()
        .filter(|r| accounts.str(r, customer_accounts::customer_id) == Some(customer_id))
        .filter_map(|r| {
            Some((
                accounts.text(r, customer_accounts::platform)?,
                accounts.text(r, customer_accounts::account_id)?,
            ))
        })
        .collect();
    if mine.is_empty() {
        return Ok(Vec::new());
    }
    let listing_rows = read(
        offers::NAME,
        &[
            offers::platform,
            offers::listing_id,
            offers::golden_id,
            offers::title,
        ],
    )?
    .unwrap_or_default();
    let listing: HashMap<(String, String), (String, String)> = listing_rows
        .rows
        .iter()
        .filter_map(|r| {
            let l = &listing_rows;
            Some((
                (l.text(r, offers::platform)?, l.text(r, offers::listing_id)?),
                (
                    l.text(r, offers::golden_id)?,
                    l.text(r, offers::title).unwrap_or_default(),
                ),
            ))
        })
        .collect();
    let orders = read(
        &EntityKind::Orders.clean_table(),
        &[
            "order_id",
            "account_id",
            "listing_id",
            "status",
            "ordered_at",
            "amount_base",
            "_platform",
            "_file",
            "_row",
        ],
    )?
    .unwrap_or_default();
    let mut out: Vec<OrderFact> = orders
        .rows
        .iter()
        .filter_map(|r| {
            let o = &orders;
            let platform = o.text(r, "_platform")?;
            let account = o.text(r, "account_id")?;
            if !mine.contains(&(platform.clone(), account)) {
                return None;
            }
            let listing_id = o.text(r, "listing_id").unwrap_or_default();
            let product = listing.get(&(platform.clone(), listing_id.clone()));
            Some(OrderFact {
                order_id: o.text(r, "order_id")?,
                listing_id,
                status: o.text(r, "status"),
                ordered_at: o.i64(r, "ordered_at"),
                amount_base: o.f64(r, "amount_base"),
                golden_id: product.map(|p| p.0.clone()),
                title: product.map(|p| p.1.clone()),
                file: o.text(r, "_file"),
                row: o.i64(r, "_row"),
                platform,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.ordered_at
            .cmp(&a.ordered_at)
            .then(b.order_id.cmp(&a.order_id))
    });
    Ok(out)
}

/// A status word as the customer reads it, in `language`.
fn status_words(status: &str, language: &str) -> String {
    let s = status.to_lowercase();
    let (en, zh) = if s.contains("refund") || s.contains("退款") {
        ("refunded", "已退款")
    } else if s.contains("cancel") || s.contains("关闭") || s.contains("取消") {
        ("cancelled", "已取消")
    } else if s.contains("complete")
        || s.contains("成功")
        || s.contains("delivered")
        || s.contains("签收")
    {
        ("delivered and completed", "已签收，交易成功")
    } else if s.contains("ship") || s.contains("发货") {
        ("shipped, on its way", "已发货，正在配送")
    } else if s.contains("paid") || s.contains("付款") && !s.contains("等待") {
        ("paid, waiting to ship", "已付款，等待发货")
    } else {
        return status.to_string();
    };
    if language == "zh" { zh } else { en }.to_string()
}

/// At most this many sibling variants are listed under a product answer.
const MAX_VARIANTS: usize = 6;

/// The assistant over one project's facts.
pub struct Assistant<'a> {
    pub index: &'a SearchIndex,
    /// Held by the caller for as long as it serves questions: it keeps the examples' vectors
    /// once encoded.
    pub classifier: &'a IntentClassifier,
    pub policies: &'a [PolicySection],
    pub encoder: Option<&'a dyn Encoder>,
    pub currency: String,
}

/// The question's words the catalogue knows, with the attribute words: what a product
/// lookup searches for ("这款华为mate 50有没有256G的？哪个平台最便宜" → "华为 mate 50 256gb").
fn product_words(index: &SearchIndex, text: &str) -> String {
    crate::tokenizer::terms(text)
        .into_iter()
        .map(|t| t.text)
        .filter(|t| index.knows_term(t))
        .collect::<Vec<_>>()
        .join(" ")
}

impl<'a> Assistant<'a> {
    /// Answers `question`; `customer_id` (CU…) is needed for order questions, and `orders`
    /// reads that customer's orders (the caller audits the read).
    pub fn answer(
        &self,
        question: &str,
        customer_id: Option<&str>,
        orders: &dyn Fn(&str) -> Result<Vec<OrderFact>, SearchError>,
    ) -> Result<Answer, SearchError> {
        let language = language_of(question);
        let (intent, confidence) = self.classifier.classify_with(question, self.encoder)?;
        let (text, citations, found) = match intent {
            Intent::ProductQuestion => self.product_answer(question, language, false)?,
            Intent::PriceStock => self.product_answer(question, language, true)?,
            Intent::Comparison => self.comparison(question, language)?,
            Intent::OrderStatus => self.order_status(question, language, customer_id, orders)?,
            Intent::ReturnsPolicy => self.policy(question, language)?,
            Intent::Recommendation => self.recommendation(question, language)?,
        };
        Ok(Answer {
            question: question.to_string(),
            language,
            intent,
            confidence,
            text,
            citations,
            found,
        })
    }

    fn find_products(
        &self,
        text: &str,
        limit: usize,
    ) -> Result<Vec<&ProductDocument>, SearchError> {
        let words = product_words(self.index, text);
        if words.trim().is_empty() {
            return Ok(Vec::new());
        }
        let mut request = SearchRequest::new(words.clone());
        request.limit = limit;
        let vector = match self.encoder {
            Some(e) => Some(e.encode(&[words.as_str()])?.row(0).to_vec()),
            None => None,
        };
        let results = self.index.search(&request, vector.as_deref())?;
        Ok(results
            .hits
            .iter()
            .filter_map(|h| self.index.document(&h.golden_id))
            .collect())
    }

    fn price(&self, p: Option<f64>) -> String {
        p.map_or("?".to_string(), |p| format!("{p:.2} {}", self.currency))
    }

    fn describe(&self, d: &ProductDocument, zh: bool) -> String {
        let title = d.title.as_deref().unwrap_or(&d.golden_id);
        let mut facts = Vec::new();
        let label = |en: &str, z: &str| if zh { z.to_string() } else { en.to_string() };
        for (en, z, v) in [
            ("brand", "品牌", &d.brand),
            ("model code", "型号", &d.model_code),
            ("colour", "颜色", &d.color),
            ("capacity", "容量", &d.capacity),
            ("category", "类目", &d.category),
        ] {
            if let Some(v) = v {
                facts.push(format!("{} {v}", label(en, z)));
            }
        }
        if zh {
            format!("{title}（{}）", facts.join("，"))
        } else {
            format!("{title} ({})", facts.join(", "))
        }
    }

    fn product_citation(d: &ProductDocument) -> Citation {
        Citation {
            source: "golden_products".into(),
            key: d.golden_id.clone(),
            origin: None,
        }
    }

    fn product_answer(
        &self,
        question: &str,
        language: &'static str,
        offers_too: bool,
    ) -> Result<(String, Vec<Citation>, bool), SearchError> {
        let zh = language == "zh";
        let Some(d) = self.find_products(question, 1)?.into_iter().next() else {
            return Ok(self.not_found(zh, "a product matching the question", "与问题相符的商品"));
        };
        let mut citations = vec![Self::product_citation(d)];
        let mut text = self.describe(d, zh);
        let platforms = d.platforms.join(if zh { "、" } else { ", " });
        let siblings = self.variants_of(d);
        let variants = self.variants_line(&siblings, zh);
        citations.extend(siblings.iter().map(|s| Self::product_citation(s)));
        if !offers_too {
            text = if zh {
                format!(
                    "{text}。在售平台：{platforms}，价格 {} 起。{variants}",
                    self.price(d.min_price_base)
                )
            } else {
                format!(
                    "{text}. Sold on {platforms}, from {}.{variants}",
                    self.price(d.min_price_base)
                )
            };
            return Ok((text, citations, true));
        }
        let mut best = d.best_offers();
        best.sort_by(|a, b| {
            a.price_base
                .unwrap_or(f64::INFINITY)
                .total_cmp(&b.price_base.unwrap_or(f64::INFINITY))
        });
        let lines: Vec<String> = best
            .iter()
            .map(|o| {
                let stock = match o.stock {
                    Some(s) if s > 0 => {
                        if zh {
                            format!("有货 {s} 件")
                        } else {
                            format!("{s} in stock")
                        }
                    }
                    Some(_) => {
                        if zh {
                            "缺货".into()
                        } else {
                            "sold out".into()
                        }
                    }
                    None => {
                        if zh {
                            "库存未知".into()
                        } else {
                            "stock unknown".into()
                        }
                    }
                };
                format!("{} {}（{stock}）", o.platform, self.price(o.price_base))
            })
            .collect();
        citations.extend(best.iter().map(|o| Citation {
            source: "offers".into(),
            key: format!("{}/{}", o.platform, o.listing_id),
            origin: None,
        }));
        let cheapest_in_stock = best.iter().find(|o| o.stock.is_some_and(|s| s > 0));
        text = match (zh, cheapest_in_stock) {
            (true, Some(o)) => format!(
                "{text}。各平台：{}。有货的最低价在 {}：{}。",
                lines.join("；"),
                o.platform,
                self.price(o.price_base)
            ),
            (true, None) => format!("{text}。各平台：{}。目前各平台均无货。", lines.join("；")),
            (false, Some(o)) => format!(
                "{text}. By platform: {}. Cheapest in stock: {} at {}.",
                lines.join("; "),
                o.platform,
                self.price(o.price_base)
            ),
            (false, None) => format!(
                "{text}. By platform: {}. It is out of stock everywhere.",
                lines.join("; ")
            ),
        };
        text.push_str(&variants);
        if !zh {
            text = text.replace('（', " (").replace('）', ")");
        }
        Ok((text, citations, true))
    }

    /// The other variants of `d`'s model (same brand and model code, another colour or
    /// capacity), cheapest first: "有没有256G的" is answered by the variant list when the
    /// product found is not the one asked about.
    fn variants_of(&self, d: &ProductDocument) -> Vec<&ProductDocument> {
        let Some(code) = d.model_code.as_deref() else {
            return Vec::new();
        };
        let mut out: Vec<&ProductDocument> = self
            .index
            .documents()
            .iter()
            .filter(|o| o.golden_id != d.golden_id)
            .filter(|o| {
                o.model_code
                    .as_deref()
                    .is_some_and(|c| c.eq_ignore_ascii_case(code))
            })
            .filter(|o| o.brand == d.brand)
            .filter(|o| {
                (o.color.as_deref(), o.capacity.as_deref())
                    != (d.color.as_deref(), d.capacity.as_deref())
            })
            .collect();
        out.sort_by(|a, b| {
            a.min_price_base
                .unwrap_or(f64::INFINITY)
                .total_cmp(&b.min_price_base.unwrap_or(f64::INFINITY))
                .then(a.golden_id.cmp(&b.golden_id))
        });
        out.truncate(MAX_VARIANTS);
        out
    }

    /// " Other variants: 128 GB black (GP…) from 4999.00 CNY, in stock; …" (empty without any).
    fn variants_line(&self, siblings: &[&ProductDocument], zh: bool) -> String {
        if siblings.is_empty() {
            return String::new();
        }
        let items: Vec<String> = siblings
            .iter()
            .map(|s| {
                let what: Vec<&str> = [s.capacity.as_deref(), s.color.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                let what = if what.is_empty() {
                    s.title.as_deref().unwrap_or(&s.golden_id).to_string()
                } else {
                    what.join(" ")
                };
                let stock = match (s.in_stock(), zh) {
                    (true, true) => "有货",
                    (false, true) => "缺货",
                    (true, false) => "in stock",
                    (false, false) => "sold out",
                };
                if zh {
                    format!(
                        "{what}（{}）{} 起，{stock}",
                        s.golden_id,
                        self.price(s.min_price_base)
                    )
                } else {
                    format!(
                        "{what} ({}) from {}, {stock}",
                        s.golden_id,
                        self.price(s.min_price_base)
                    )
                }
            })
            .collect();
        if zh {
            format!("同款其他规格：{}。", items.join("；"))
        } else {
            format!(" Other variants: {}.", items.join("; "))
        }
    }

    fn comparison(
        &self,
        question: &str,
        language: &'static str,
    ) -> Result<(String, Vec<Citation>, bool), SearchError> {
        let zh = language == "zh";
        let lower = question.to_lowercase();
        let parts: Vec<&str> = [
            " versus ", " vs ", " vs. ", " and ", " or ", "和", "与", "跟", "还是", "对比",
        ]
        .iter()
        .find_map(|sep| lower.split_once(sep).map(|(a, b)| vec![a, b]))
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.trim_start_matches("compare").trim())
        .collect();
        let mut found: Vec<&ProductDocument> = Vec::new();
        for p in &parts {
            if let Some(d) = self.find_products(p, 1)?.into_iter().next() {
                if !found.iter().any(|f| f.golden_id == d.golden_id) {
                    found.push(d);
                }
            }
        }
        if found.len() < 2 {
            return Ok(self.not_found(
                zh,
                "two products to compare (name both, e.g. \"A vs B\")",
                "两款可对比的商品（请写出两款的名称，如“A 和 B”）",
            ));
        }
        let lines: Vec<String> = found
            .iter()
            .map(|d| {
                let platforms = d.platforms.join(if zh { "、" } else { ", " });
                if zh {
                    format!(
                        "{}，最低 {}，在售 {platforms}",
                        self.describe(d, zh),
                        self.price(d.min_price_base)
                    )
                } else {
                    format!(
                        "{}, from {}, on {platforms}",
                        self.describe(d, zh),
                        self.price(d.min_price_base)
                    )
                }
            })
            .collect();
        let cheaper = found
            .iter()
            .min_by(|a, b| {
                a.min_price_base
                    .unwrap_or(f64::INFINITY)
                    .total_cmp(&b.min_price_base.unwrap_or(f64::INFINITY))
            })
            .expect("two products");
        let name = cheaper.title.as_deref().unwrap_or(&cheaper.golden_id);
        let text = if zh {
            format!("{}。价格更低的是 {name}。", lines.join("；"))
        } else {
            format!("{}. The cheaper one is {name}.", lines.join("; "))
        };
        Ok((
            text,
            found.iter().map(|d| Self::product_citation(d)).collect(),
            true,
        ))
    }

    fn order_status(
        &self,
        question: &str,
        language: &'static str,
        customer_id: Option<&str>,
        orders: &dyn Fn(&str) -> Result<Vec<OrderFact>, SearchError>,
    ) -> Result<(String, Vec<Citation>, bool), SearchError> {
        let zh = language == "zh";
        let Some(customer) = customer_id else {
            return Ok(self.not_found(
                zh,
                "whose order this is: ask with the customer's id (--customer CU…)",
                "订单属于哪位顾客：请提供顾客编号（--customer CU…）",
            ));
        };
        let all = orders(customer)?;
        let folded = crate::tokenizer::fold(question);
        let named = all
            .iter()
            .find(|o| folded.contains(&o.order_id.to_lowercase()));
        let Some(o) = named.or(all.first()) else {
            return Ok(self.not_found(
                zh,
                &format!("any order of customer {customer}"),
                &format!("顾客 {customer} 的订单"),
            ));
        };
        let status = o
            .status
            .as_deref()
            .map(|s| status_words(s, language))
            .unwrap_or_else(|| {
                if zh {
                    "状态未知".into()
                } else {
                    "of unknown status".into()
                }
            });
        let when = o.ordered_at.and_then(chrono_date).unwrap_or_default();
        let what = o.title.clone().unwrap_or_else(|| o.listing_id.clone());
        let text = if zh {
            format!(
                "订单 {}（{}，{when} 下单，{what}）：{status}。",
                o.order_id, o.platform
            )
        } else {
            format!(
                "Order {} on {} (placed {when}, {what}) is {status}.",
                o.order_id, o.platform
            )
        };
        let origin = match (&o.file, o.row) {
            (Some(f), Some(r)) => Some(format!("{f} row {r}")),
            _ => None,
        };
        Ok((
            text,
            vec![Citation {
                source: EntityKind::Orders.clean_table(),
                key: format!("{}/{}", o.platform, o.order_id),
                origin,
            }],
            true,
        ))
    }

    fn policy(
        &self,
        question: &str,
        language: &'static str,
    ) -> Result<(String, Vec<Citation>, bool), SearchError> {
        let zh = language == "zh";
        let lexical =
            policies::lexical_scores(self.policies, question, &|t| self.classifier.is_framing(t));
        let dense: Vec<f64> = match self.encoder {
            Some(e) if !self.policies.is_empty() => {
                // The question against the heading and each sentence: one sentence answers
                // it, and a whole section's vector blurs it with the others.
                let mut texts: Vec<&str> = vec![question];
                let mut owner: Vec<usize> = vec![usize::MAX];
                for (i, s) in self.policies.iter().enumerate() {
                    texts.push(&s.heading);
                    owner.push(i);
                    for sentence in s
                        .body
                        .split(['。', '；', '.', ';', '\n'])
                        .filter(|x| x.trim().len() > 3)
                    {
                        texts.push(sentence);
                        owner.push(i);
                    }
                }
                let v = e.encode(&texts)?;
                let mut best = vec![f64::NEG_INFINITY; self.policies.len()];
                for j in 1..v.len() {
                    let c = f64::from(crate::dense::dot(v.row(0), v.row(j)));
                    best[owner[j]] = best[owner[j]].max(c);
                }
                best
            }
            _ => vec![0.0; self.policies.len()],
        };
        let max_lex = lexical.iter().copied().fold(0.0, f64::max).max(1e-9);
        let best = self
            .policies
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.language == language || !self.policies.iter().any(|p| p.language == language)
            })
            .map(|(i, s)| (s, dense[i] + 0.5 * lexical[i] / max_lex, lexical[i]))
            .filter(|(_, score, lex)| *lex > 0.0 || *score > 0.3)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((section, _, _)) = best else {
            return Ok(self.not_found(zh, "a policy section about this (add Markdown files to the project's policies/ folder)", "相关的店铺政策（请在项目的 policies/ 文件夹中添加 Markdown 文件）"));
        };
        Ok((
            format!("{}: {}", section.heading, section.body.replace('\n', " ")),
            vec![Citation {
                source: section.file.clone(),
                key: section.heading.clone(),
                origin: None,
            }],
            true,
        ))
    }

    fn recommendation(
        &self,
        question: &str,
        language: &'static str,
    ) -> Result<(String, Vec<Citation>, bool), SearchError> {
        let zh = language == "zh";
        let filters = Filters {
            max_price: budget(question),
            in_stock: true,
            category: self.category_named(question),
            ..Filters::default()
        };
        let words = product_words(self.index, question);
        let mut request = SearchRequest::new(if words.is_empty() {
            question.to_string()
        } else {
            words.clone()
        });
        request.filters = filters.clone();
        request.limit = 3;
        let vector = match self.encoder {
            Some(e) => Some(e.encode(&[request.query.as_str()])?.row(0).to_vec()),
            None => None,
        };
        let results = self.index.search(&request, vector.as_deref())?;
        let docs: Vec<&ProductDocument> = results
            .hits
            .iter()
            .filter_map(|h| self.index.document(&h.golden_id))
            .collect();
        if docs.is_empty() {
            return Ok(self.not_found(
                zh,
                &format!("an in-stock product with {}", filters.describe().join(", ")),
                &format!("符合条件（{}）且有货的商品", filters.describe().join("，")),
            ));
        }
        let lines: Vec<String> = docs
            .iter()
            .map(|d| format!("{} {}", self.describe(d, zh), self.price(d.min_price_base)))
            .collect();
        let text = if zh {
            format!("为您推荐：{}。", lines.join("；"))
        } else {
            format!("You could consider: {}.", lines.join("; "))
        };
        Ok((
            text,
            docs.iter().map(|d| Self::product_citation(d)).collect(),
            true,
        ))
    }

    /// The catalogue category the question names, in any spelling the project knows.
    fn category_named(&self, question: &str) -> Option<String> {
        let q = crate::tokenizer::fold(question);
        let mut categories: Vec<&str> = self
            .index
            .documents()
            .iter()
            .filter_map(|d| d.category.as_deref())
            .collect();
        categories.sort();
        categories.dedup();
        let mut best: Option<(usize, &str)> = None;
        for c in categories {
            let mut spellings: Vec<String> = vec![c.to_string()];
            spellings.extend(
                self.index
                    .aliases()
                    .spellings("category", c)
                    .into_iter()
                    .map(str::to_string),
            );
            for s in spellings {
                let f = crate::tokenizer::fold(&s);
                let singular = f.trim_end_matches('s');
                let hit = q.contains(&f) || (singular.len() >= 4 && q.contains(singular));
                if hit && best.is_none_or(|(len, _)| f.len() > len) {
                    best = Some((f.len(), c));
                }
            }
        }
        best.map(|(_, c)| c.to_string())
    }

    fn not_found(&self, zh: bool, en: &str, zh_text: &str) -> (String, Vec<Citation>, bool) {
        let text = if zh {
            format!("抱歉，没有找到{zh_text}，因此无法回答。")
        } else {
            format!("Sorry, I could not find {en}, so I cannot answer that.")
        };
        (text, Vec::new(), false)
    }
}

/// A price ceiling the question names: "under 3000", "3000元以内", "below ¥2000", "2000块以下".
pub fn budget(question: &str) -> Option<f64> {
    let q = crate::tokenizer::fold(question);
    for (number, rest) in shopfuse_core::text::numbers_with_rest(&q) {
        let rest = rest.trim_start();
        let after_zh = [
            "元以内",
            "元以下",
            "块以内",
            "块以下",
            "以内",
            "以下",
            "元内",
        ];
        if after_zh.iter().any(|w| rest.starts_with(w)) {
            return number.parse().ok();
        }
    }
    for marker in ["under ", "below ", "less than ", "up to ", "within "] {
        if let Some(pos) = q.find(marker) {
            let tail = &q[pos + marker.len()..];
            let tail = tail.trim_start_matches(['¥', '$', ' ']);
            let digits: String = tail
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            if let Ok(v) = digits.parse() {
                return Some(v);
            }
        }
    }
    None
}

fn chrono_date(micros: i64) -> Option<String> {
    let secs = micros.div_euclid(1_000_000);
    // Days since 1970-01-01 → civil date (Howard Hinnant's algorithm), in Beijing's day.
    let z = (secs + 8 * 3600).div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    Some(format!("{}-{m:02}-{d:02}", if m <= 2 { y + 1 } else { y }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{document, Fields, LearnedAliases, Offer};

    fn phone(id: &str, title: &str, colour: &str, capacity: &str, price: f64) -> ProductDocument {
        let mut d = document(
            id.into(),
            Fields {
                title: Some(title.into()),
                brand: Some("Huawei".into()),
                category: Some("Phones".into()),
                model_code: Some("CET-AL00".into()),
                color: Some(colour.into()),
                capacity: Some(capacity.into()),
                min_price_base: Some(price),
            },
            vec![Offer {
                platform: "jd".into(),
                listing_id: format!("{id}-jd"),
                title: title.into(),
                price_base: Some(price),
                stock: Some(3),
            }],
            &LearnedAliases::default(),
        );
        d.vector = vec![1.0, 0.0];
        d
    }

    #[test]
    fn a_product_answer_lists_the_other_variants_of_its_model() {
        let docs = vec![
            phone("GP1", "华为 Mate 50 128G 紫色", "purple", "128GB", 4999.0),
            phone("GP2", "华为 Mate 50 256G 黑色", "black", "256GB", 5499.0),
            phone("GP3", "华为 Mate 50 512G 黑色", "black", "512GB", 6499.0),
        ];
        let mut other = phone("GP4", "Huawei P60 256GB Black", "black", "256GB", 4000.0);
        other.model_code = Some("LNA-AL00".into());
        let mut docs = docs;
        docs.push(other);
        let index = SearchIndex::in_memory(docs, LearnedAliases::default()).unwrap();
        let classifier = IntentClassifier::shipped();
        let assistant = Assistant {
            index: &index,
            classifier: &classifier,
            policies: &[],
            encoder: None,
            currency: "CNY".into(),
        };
        let (text, citations, found) = assistant
            .product_answer("华为 Mate 50 紫色 有货吗", "zh", true)
            .unwrap();
        assert!(found);
        let keys: Vec<&str> = citations
            .iter()
            .filter(|c| c.source == "golden_products")
            .map(|c| c.key.as_str())
            .collect();
        assert_eq!(keys, ["GP1", "GP2", "GP3"], "{text}");
        assert!(text.contains("同款其他规格：256GB black（GP2）"), "{text}");
        assert!(!text.contains("GP4"), "{text}");
    }

    #[test]
    fn budgets_in_both_languages() {
        assert_eq!(budget("能推荐一款3000元以内的手机吗？"), Some(3000.0));
        assert_eq!(
            budget("Can you suggest headphones under 2500 yuan?"),
            Some(2500.0)
        );
        assert_eq!(budget("推荐一款手机"), None);
    }

    #[test]
    fn dates_are_beijing_days() {
        // 2024-01-01 00:00 Beijing = 2023-12-31 16:00 UTC.
        assert_eq!(
            chrono_date(1_704_038_400_000_000).as_deref(),
            Some("2024-01-01")
        );
    }

    #[test]
    fn status_words_read_both_exports() {
        assert_eq!(status_words("交易成功", "en"), "delivered and completed");
        assert_eq!(status_words("shipped", "zh"), "已发货，正在配送");
    }
}
