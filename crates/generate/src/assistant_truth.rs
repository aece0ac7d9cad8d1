//! Ground truth for search and the customer-service assistant: a query set with the product
//! each query means (`truth/search_queries.csv`), a question set with each question's intent
//! and the fact its answer must cite (`truth/questions.csv`), and the shop's policy documents
//! (`policies/*.md`) the returns questions are answered from.
//!
//! The phrasings here are templates of their own, unlike the labelled examples the intent
//! classifier is trained on (`crates/search/data/intents.tsv`), so the evaluation measures
//! generalisation rather than recall of the training set.

use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::activity::{Activity, Listing};
use crate::catalog::Product;
use crate::people::Person;

/// (file, heading, body) of every policy section; the English and Chinese documents say the
/// same in their language.
pub const POLICIES: &[(&str, &str, &str)] = &[
    ("returns.en.md", "7-day returns", "Unused items in their original packaging can be returned within 7 days of delivery without giving a reason. Start the return from the order page on the platform you bought from; we refund to the original payment method within 3 working days of receiving the item."),
    ("returns.en.md", "Damaged or faulty items", "If an item arrives damaged or stops working within 15 days, contact customer service with a photo: we send a replacement or refund in full, and we pay the return shipping."),
    ("returns.en.md", "Refund timing", "Refunds reach card payments in 3-7 working days and Alipay or WeChat Pay balances within 24 hours after the return is approved."),
    ("returns.zh.md", "七天无理由退货", "商品签收后7天内，未使用且包装完好，可申请无理由退货。请在下单平台的订单页面发起退货；我们收到商品后3个工作日内原路退款。"),
    ("returns.zh.md", "商品破损或故障", "商品签收时破损或15天内出现故障，请联系客服并提供照片，我们将免费换新或全额退款，退货运费由我们承担。"),
    ("returns.zh.md", "退款到账时间", "退货审核通过后，银行卡3-7个工作日到账，支付宝或微信支付24小时内到账。"),
    ("shipping.en.md", "Delivery times", "Orders placed before 4 pm ship the same day. Delivery takes 1-3 days in mainland China and 5-10 days abroad; SF Express is free on orders over 99 CNY."),
    ("shipping.zh.md", "配送时效", "下午4点前下单当天发货。大陆地区1-3天送达，海外5-10天；订单满99元免费使用顺丰快递。"),
    ("warranty.en.md", "Warranty", "Electronics carry the manufacturer's 1-year warranty; keep the order number, which is the proof of purchase on every platform."),
    ("warranty.zh.md", "保修政策", "电子产品享受厂家一年保修，请保留订单号，各平台订单号均可作为购买凭证。"),
];

/// The policy documents as (relative path, Markdown).
pub fn policy_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = Vec::new();
    for (file, heading, body) in POLICIES {
        let path = format!("policies/{file}");
        let title = if file.contains(".zh.") {
            "# 店铺政策"
        } else {
            "# Shop policies"
        };
        match files.iter_mut().find(|(p, _)| *p == path) {
            Some((_, text)) => text.push_str(&format!("\n## {heading}\n\n{body}\n")),
            None => files.push((path, format!("{title}\n\n## {heading}\n\n{body}\n"))),
        }
    }
    files
}

/// What a product is called in queries.
fn name_en(p: &Product) -> String {
    format!("{} {} {}", p.brand_en, p.series, p.model)
}

fn name_zh(p: &Product) -> String {
    format!("{} {} {}", p.brand_zh, p.series, p.model)
}

fn attrs_en(p: &Product) -> String {
    [
        p.colour.map(|c| c.0.to_string()),
        p.capacity.map(str::to_string),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
}

fn attrs_zh(p: &Product) -> String {
    [
        p.colour.map(|c| c.1.to_string()),
        p.capacity.map(|c| c.replace("GB", "G")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
}

/// One typo in the longest Latin word of `text`: two neighbouring letters swapped.
fn misspell(text: &str, rng: &mut ChaCha8Rng) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let Some((wi, word)) = words
        .iter()
        .enumerate()
        .filter(|(_, w)| w.len() >= 5 && w.chars().all(|c| c.is_ascii_alphabetic()))
        .max_by_key(|(_, w)| w.len())
    else {
        return text.to_string();
    };
    let mut chars: Vec<char> = word.chars().collect();
    let i = rng.random_range(1..chars.len() - 1);
    chars.swap(i, i + 1);
    let mut out: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    out[wi] = chars.into_iter().collect();
    out.join(" ")
}

/// Each product's listings, in listing order. Built once: a scan of every listing per product
/// made a million-listing data set spend 25 minutes here.
fn listings_by_product<'a>(products: &[Product], listings: &'a [Listing]) -> Vec<Vec<&'a Listing>> {
    let mut by_product = vec![Vec::new(); products.len()];
    for l in listings {
        by_product[l.product].push(l);
    }
    by_product
}

/// `truth/search_queries.csv`: query_id, kind, language, query, product_id, family_id.
pub fn search_queries(products: &[Product], listings: &[Listing], rng: &mut ChaCha8Rng) -> String {
    let mut out = String::from("query_id,kind,language,query,product_id,family_id\n");
    let mut n = 0;
    let mut push = |kind: &str, lang: &str, q: String, p: &Product| {
        n += 1;
        out.push_str(&format!(
            "Q{n:04},{kind},{lang},\"{}\",{},{}\n",
            q.replace('"', "'"),
            p.product_id,
            p.family_id
        ));
    };
    let by_product = listings_by_product(products, listings);
    let step = (products.len() / 60).max(1);
    for (pi, p) in products.iter().enumerate().step_by(step) {
        let Some(listing) = by_product[pi].choose(rng) else {
            continue;
        };
        push(
            "exact_title",
            if listing.platform == "amazon" || listing.platform == "own_shop" {
                "en"
            } else {
                "zh"
            },
            listing.title.clone(),
            p,
        );
        push(
            "paraphrase",
            "en",
            format!(
                "{} {} {}",
                attrs_en(p),
                name_en(p),
                p.category_en().trim_end_matches('s')
            ),
            p,
        );
        push(
            "paraphrase",
            "zh",
            format!(
                "{}{} {} {} {}",
                p.brand_zh,
                p.category_zh(),
                p.series,
                p.model,
                attrs_zh(p)
            ),
            p,
        );
        if p.colour.is_some() || p.capacity.is_some() {
            push(
                "attribute",
                "zh",
                format!("{} {}", attrs_zh(p), name_zh(p)),
                p,
            );
            push(
                "attribute",
                "en",
                format!("{} in {}", name_en(p), attrs_en(p)),
                p,
            );
        }
        push(
            "misspelling",
            "en",
            misspell(&format!("{} {}", name_en(p), attrs_en(p)), rng),
            p,
        );
        push(
            "mixed",
            "mixed",
            format!("{} {} {} {}", p.brand_zh, p.series, p.model, attrs_en(p)),
            p,
        );
    }
    // Cross-language: every product listed in one language only, queried in the other (up
    // to 60 of them).
    let mut cross = 0;
    for (pi, p) in products.iter().enumerate() {
        let own = &by_product[pi];
        if own.is_empty() || cross >= 60 {
            continue;
        }
        let chinese_only = own
            .iter()
            .all(|l| l.platform == "taobao" || l.platform == "jd");
        let english_only = own
            .iter()
            .all(|l| l.platform == "amazon" || l.platform == "own_shop");
        if chinese_only {
            push(
                "cross_language",
                "en",
                format!("{} {}", name_en(p), attrs_en(p)),
                p,
            );
            cross += 1;
        } else if english_only {
            push(
                "cross_language",
                "zh",
                format!("{} {} {}", name_zh(p), attrs_zh(p), p.category_zh()),
                p,
            );
            cross += 1;
        }
    }
    out
}

/// `truth/questions.csv`: question_id, intent, language, question, platform, account_id,
/// expected. `expected` is what the answer must cite: a product id, two product ids joined by
/// `+`, an order id, `policies/FILE#HEADING`, or `category=…;max_price=…` for a
/// recommendation (every cited product must satisfy it).
pub fn questions(
    products: &[Product],
    listings: &[Listing],
    people: &[Person],
    activity: &Activity,
    rng: &mut ChaCha8Rng,
) -> String {
    let mut out =
        String::from("question_id,intent,language,question,platform,account_id,expected\n");
    let mut n = 0;
    let mut push =
        |intent: &str, lang: &str, q: String, account: Option<(&str, &str)>, expected: String| {
            n += 1;
            let (platform, account_id) = account.unwrap_or(("", ""));
            out.push_str(&format!(
                "A{n:04},{intent},{lang},\"{}\",{platform},{account_id},\"{expected}\"\n",
                q.replace('"', "'")
            ));
        };
    let by_product = listings_by_product(products, listings);
    let listed: Vec<usize> = (0..products.len())
        .filter(|&i| !by_product[i].is_empty())
        .collect();
    for round in 0..20 {
        let zh = round % 2 == 0;
        let lang = if zh { "zh" } else { "en" };
        let p = &products[*listed.choose(rng).expect("listed products")];
        let q = if zh {
            format!("{} {}的型号是什么？", name_zh(p), attrs_zh(p))
        } else {
            format!(
                "What is the model number of the {} {}?",
                name_en(p),
                attrs_en(p)
            )
        };
        push("product_question", lang, q, None, p.product_id.clone());
        let p = &products[*listed.choose(rng).expect("listed products")];
        let q = if zh {
            format!(
                "{} {}在哪个平台买最便宜，还有货吗？",
                name_zh(p),
                attrs_zh(p)
            )
        } else {
            format!(
                "Where can I buy the {} {} for the lowest price, and is it in stock?",
                name_en(p),
                attrs_en(p)
            )
        };
        push("price_stock", lang, q, None, p.product_id.clone());
        let a = &products[*listed.choose(rng).expect("listed products")];
        let b = &products[*listed.choose(rng).expect("listed products")];
        if a.family_id != b.family_id {
            let q = if zh {
                format!(
                    "{} {} 和 {} {} 哪个更值得买？",
                    name_zh(a),
                    attrs_zh(a),
                    name_zh(b),
                    attrs_zh(b)
                )
            } else {
                format!(
                    "Compare the {} {} versus the {} {}",
                    name_en(a),
                    attrs_en(a),
                    name_en(b),
                    attrs_en(b)
                )
            };
            push(
                "comparison",
                lang,
                q,
                None,
                format!("{}+{}", a.product_id, b.product_id),
            );
        }
        if let Some(o) = activity.orders.choose(rng) {
            let person = &people[o.person];
            let account = &person.accounts[o.account];
            let latest = activity
                .orders
                .iter()
                .filter(|x| x.person == o.person)
                .max_by_key(|x| (x.ordered_at, x.order_id.clone()))
                .expect("the person has this order");
            let (q, expected) = match (zh, round % 4 < 2) {
                (true, true) => (
                    format!("我的订单{}现在到哪了？", o.order_id),
                    o.order_id.clone(),
                ),
                (true, false) => (
                    "我最近买的东西发货了吗？".to_string(),
                    latest.order_id.clone(),
                ),
                (false, true) => (
                    format!("What's the status of my order {}?", o.order_id),
                    o.order_id.clone(),
                ),
                (false, false) => (
                    "Has my latest purchase shipped yet?".to_string(),
                    latest.order_id.clone(),
                ),
            };
            push(
                "order_status",
                lang,
                q,
                Some((account.platform, &account.account_id)),
                expected,
            );
        }
        let returns: Vec<&(&str, &str, &str)> = POLICIES
            .iter()
            .filter(|(f, _, _)| f.contains(if zh { ".zh." } else { ".en." }))
            .collect();
        let (file, heading, _) = returns.choose(rng).expect("policies");
        let q = match *heading {
            "7-day returns" => "Can I send back something I don't want after a few days?",
            "Damaged or faulty items" => "My package arrived broken, what can I do?",
            "Refund timing" => "How long until my refund arrives on my card?",
            "Delivery times" => "How many days does delivery take?",
            "Warranty" => "Is there a warranty on electronics?",
            "七天无理由退货" => "买了不想要了能退吗？",
            "商品破损或故障" => "收到的东西坏了怎么办？",
            "退款到账时间" => "退款多久能到账？",
            "配送时效" => "下单后几天能送到？",
            _ => "电子产品保修多久？",
        };
        push(
            "returns_policy",
            lang,
            q.to_string(),
            None,
            format!("policies/{file}#{heading}"),
        );
        let p = &products[*listed.choose(rng).expect("listed products")];
        let budget = ((p.price_cny * 1.3) / 100.0).ceil() * 100.0;
        let q = if zh {
            format!("能推荐一款{}元以内的{}吗？", budget, p.category_zh())
        } else {
            format!(
                "Can you suggest {} under {} yuan?",
                p.category_en().to_lowercase(),
                budget
            )
        };
        push(
            "recommendation",
            lang,
            q,
            None,
            format!("category={};max_price={budget}", p.category_en()),
        );
    }
    out
}
