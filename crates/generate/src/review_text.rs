//! Review texts as shoppers write them: one to three clauses, each about an **aspect**
//! (quality, logistics, price, service, authenticity, packaging, size/fit) with its own
//! tone, in Chinese or English; mixed reviews for three stars; a few five-star reviews with
//! angry text (rating–text mismatch); and planted **defect batches** — a product whose
//! reviews turn negative on one aspect for some weeks — written to
//! `truth/sentiment_defects.csv` for the sentiment stage's alerts to be checked against.
//!
//! Runs on its own random stream after the simulation, so composing texts changes no other
//! draw of the data set (ratings change only inside defect batches).

use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::activity::{Activity, Listing, DAY_US};

/// (aspect, zh positive, zh negative, en positive, en negative) clauses.
type AspectClauses = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

const ASPECTS: &[AspectClauses] = &[
    (
        "quality",
        &[
            "质量很好",
            "做工精细，用料扎实",
            "用了一周很稳定",
            "品质不错，超出预期",
        ],
        &[
            "质量太差了",
            "用两天就坏了",
            "做工粗糙，有毛边",
            "没用几次就出问题了",
        ],
        &[
            "excellent build quality",
            "works great",
            "solid and well made",
            "has been flawless so far",
        ],
        &[
            "poor quality",
            "stopped working after a week",
            "feels cheap and flimsy",
            "broke within days",
        ],
    ),
    (
        "logistics",
        &["物流很快", "第二天就到了", "快递小哥很给力", "发货迅速"],
        &[
            "物流太慢了",
            "快递等了十天",
            "物流信息一直不更新",
            "发货拖了一周",
        ],
        &["fast shipping", "arrived a day early", "delivery was quick"],
        &[
            "shipping took forever",
            "delivery was late",
            "arrived two weeks late",
        ],
    ),
    (
        "price",
        &["性价比很高", "价格实惠", "这个价格很值"],
        &["价格偏贵", "不值这个价", "比别家贵了不少"],
        &[
            "great value for the price",
            "worth every penny",
            "good price",
        ],
        &[
            "overpriced",
            "not worth the money",
            "way too expensive for what it is",
        ],
    ),
    (
        "service",
        &["客服态度很好", "客服回复及时，很耐心", "售后很负责"],
        &["客服不理人", "客服态度很差", "售后推来推去"],
        &["customer service was helpful", "seller answered quickly"],
        &["customer service never replied", "the seller was rude"],
    ),
    (
        "authenticity",
        &["正品无疑", "官方正品，放心", "验过了是正品"],
        &["怀疑不是正品", "像是假货", "和专柜的不一样，疑似翻新"],
        &["genuine product", "authentic, as advertised"],
        &[
            "looks like a fake",
            "seems used or refurbished",
            "not genuine",
        ],
    ),
    (
        "packaging",
        &["包装完好", "包装很用心", "包装严实，没有磕碰"],
        &["包装破损", "外盒压坏了", "包装很简陋，有划痕"],
        &["packaging was perfect", "well packed"],
        &[
            "packaging was damaged",
            "box arrived crushed",
            "poorly packed, scratched",
        ],
    ),
    (
        "size_fit",
        &["尺寸刚好", "大小合适", "尺码很标准"],
        &["尺寸不对", "比描述的小很多", "尺码偏大，不合适"],
        &["fits perfectly", "size is just right"],
        &[
            "does not fit",
            "much smaller than described",
            "runs too large",
        ],
    ),
];

const ZH_OPEN_POS: &[&str] = &["非常满意", "好评", "推荐购买", "会回购的"];
const ZH_OPEN_NEG: &[&str] = &["很失望", "差评", "不推荐", "后悔买了"];
const ZH_NEUTRAL: &[&str] = &["一般般", "还行吧", "和描述差不多", "中规中矩"];
const EN_OPEN_POS: &[&str] = &[
    "Very happy!",
    "Love it",
    "Highly recommend",
    "Would buy again",
];
const EN_OPEN_NEG: &[&str] = &[
    "Very disappointed",
    "Do not buy",
    "Returning it",
    "Waste of money",
];
const EN_NEUTRAL: &[&str] = &["It's okay", "Nothing special", "Average", "Does the job"];

/// A planted defect batch.
#[derive(Debug, Clone)]
pub struct DefectBatch {
    pub product: usize,
    pub aspect: &'static str,
    pub start: i64,
    pub end: i64,
    pub reviews: usize,
}

/// What the texts say, per review: its polarity, aspects, and whether it contradicts the
/// rating.
#[derive(Debug, Clone, Default)]
pub struct ReviewTruth {
    pub sentiment: &'static str,
    /// `aspect:polarity` separated by `;`.
    pub aspects: String,
    pub mismatch: bool,
    pub defect: Option<usize>,
}

/// Share of ordinary five-star reviews whose text is angry.
const MISMATCH_SHARE: f64 = 0.03;

/// Rewrites every non-brushing review's text (and, in defect batches, its rating) and
/// returns what each says and the batches planted.
pub fn compose(
    activity: &mut Activity,
    listings: &[Listing],
    rng: &mut ChaCha8Rng,
) -> (Vec<ReviewTruth>, Vec<DefectBatch>) {
    let mut batches = plant_defects(activity, listings, rng);
    let mut truths = Vec::with_capacity(activity.reviews.len());
    for r in activity.reviews.iter_mut() {
        let order = &activity.orders[r.order];
        if order.fraud == Some("brushing") {
            truths.push(ReviewTruth {
                sentiment: "positive",
                ..Default::default()
            });
            continue;
        }
        let english =
            order.platform == "amazon" || (order.platform == "own_shop" && rng.random_bool(0.3));
        let product = listings[order.listing].product;
        let defect = batches
            .iter()
            .position(|b| b.product == product && (b.start..b.end).contains(&r.at));
        if let Some(d) = defect {
            batches[d].reviews += 1;
            if rng.random_bool(0.8) {
                r.rating = rng.random_range(1..=2);
            }
        }
        let mismatch = defect.is_none() && r.rating == 5 && rng.random_bool(MISMATCH_SHARE);
        let tone = match (mismatch, r.rating) {
            (true, _) => "negative",
            (_, 4..=5) => "positive",
            (_, 3) => "neutral",
            _ => "negative",
        };
        let forced = defect.map(|d| batches[d].aspect);
        let (text, aspects) = text_of(tone, english, forced, rng);
        r.text = text;
        truths.push(ReviewTruth {
            sentiment: tone,
            aspects,
            mismatch,
            defect,
        });
    }
    (truths, batches)
}

/// One to three clauses in the review's tone; a defect batch's aspect comes first and
/// negative.
fn text_of(
    tone: &str,
    english: bool,
    forced: Option<&'static str>,
    rng: &mut ChaCha8Rng,
) -> (String, String) {
    let mut text = Clauses::default();
    if let Some(name) = forced.filter(|_| tone == "negative") {
        let aspect = ASPECTS.iter().find(|a| a.0 == name).expect("aspect");
        text.push(aspect, false, english, rng);
    }
    let n = rng.random_range(1..=2usize);
    for i in 0..n {
        let aspect = loop {
            let a = ASPECTS.choose(rng).expect("aspect");
            if !text.used.contains(&a.0) {
                break a;
            }
        };
        let positive = match tone {
            "positive" => true,
            "negative" => false,
            // A mixed review: one side each.
            _ => i == 0,
        };
        text.push(aspect, positive, english, rng);
    }
    let Clauses {
        mut clauses,
        aspects,
        ..
    } = text;
    let closing = match (tone, english) {
        ("positive", false) => ZH_OPEN_POS,
        ("negative", false) => ZH_OPEN_NEG,
        (_, false) => ZH_NEUTRAL,
        ("positive", true) => EN_OPEN_POS,
        ("negative", true) => EN_OPEN_NEG,
        (_, true) => EN_NEUTRAL,
    };
    if tone == "neutral" || rng.random_bool(0.6) {
        clauses.push(closing.choose(rng).expect("closing").to_string());
    }
    let text = if english {
        let joined = clauses.join(if tone == "neutral" { ", but " } else { ", " });
        let mut chars = joined.chars();
        match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect::<String>() + ".",
            None => joined,
        }
    } else {
        clauses.join(if tone == "neutral" {
            "，但是"
        } else {
            "，"
        })
    };
    (text, aspects.join(";"))
}

#[derive(Default)]
struct Clauses {
    clauses: Vec<String>,
    aspects: Vec<String>,
    used: Vec<&'static str>,
}

impl Clauses {
    fn push(
        &mut self,
        aspect: &'static AspectClauses,
        positive: bool,
        english: bool,
        rng: &mut ChaCha8Rng,
    ) {
        let pool = match (english, positive) {
            (false, true) => aspect.1,
            (false, false) => aspect.2,
            (true, true) => aspect.3,
            (true, false) => aspect.4,
        };
        self.clauses
            .push(pool.choose(rng).expect("clause").to_string());
        let polarity = if positive { "positive" } else { "negative" };
        self.aspects.push(format!("{}:{polarity}", aspect.0));
        self.used.push(aspect.0);
    }
}

/// Three defect batches (fewer on tiny data sets) on the most-reviewed products, each on one
/// aspect for five to seven weeks in the second half of the period.
fn plant_defects(
    activity: &Activity,
    listings: &[Listing],
    rng: &mut ChaCha8Rng,
) -> Vec<DefectBatch> {
    let mut per_product: std::collections::HashMap<usize, usize> = Default::default();
    for r in &activity.reviews {
        *per_product
            .entry(listings[activity.orders[r.order].listing].product)
            .or_default() += 1;
    }
    let mut ranked: Vec<(usize, usize)> = per_product.into_iter().collect();
    ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let (Some(first), Some(last)) = (
        activity.reviews.iter().map(|r| r.at).min(),
        activity.reviews.iter().map(|r| r.at).max(),
    ) else {
        return Vec::new();
    };
    const DEFECT_ASPECTS: &[&str] = &["quality", "packaging", "logistics", "authenticity"];
    ranked
        .iter()
        .filter(|(_, n)| *n >= 40)
        .take(3)
        .enumerate()
        .map(|(i, &(product, _))| {
            let weeks = rng.random_range(5..=7);
            let span = last - first;
            let start =
                first + span / 2 + rng.random_range(0..(span / 2 - weeks * 7 * DAY_US).max(1));
            DefectBatch {
                product,
                aspect: DEFECT_ASPECTS[i % DEFECT_ASPECTS.len()],
                start,
                end: start + weeks * 7 * DAY_US,
                reviews: 0,
            }
        })
        .collect()
}

/// The clause vocabulary's aspect names, for tests that they match the stage's.
pub fn aspect_names() -> Vec<&'static str> {
    ASPECTS.iter().map(|a| a.0).collect()
}
