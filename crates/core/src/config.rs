//! `shopfuse.toml`: the project's declared sources and stage settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{CoreError, IoContext, Result};
use crate::schema::EntityKind;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    #[serde(default)]
    pub project: ProjectSection,
    #[serde(default)]
    pub currency: CurrencySection,
    #[serde(default, rename = "sources")]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub clean: CleanConfig,
    #[serde(default)]
    pub resolve: ResolveConfig,
    #[serde(default)]
    pub identity: IdentityConfig,
    #[serde(default)]
    pub privacy: PrivacyConfig,
    #[serde(default)]
    pub recs: RecsConfig,
    #[serde(default)]
    pub propensity: PropensityConfig,
    #[serde(default)]
    pub forecast: ForecastConfig,
    #[serde(default)]
    pub sentiment: SentimentConfig,
    #[serde(default)]
    pub risk: RiskConfig,
    #[serde(default)]
    pub store: StoreConfig,
}

/// Where the tables live (`[store]`): the project directory unless `url` names an object
/// store. Credentials never go here: the backend reads them from the environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `s3://bucket/prefix` (credentials and endpoint from the `AWS_*` environment
    /// variables), `file:///srv/shopfuse/shop-a` (object_store's local backend, e.g. on a
    /// mount every machine shares) or `memory:///` (tests); the tables and their manifest go
    /// under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Sales forecasting (`[forecast]`): horizon, backtest, the global model and the promotion
/// calendar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForecastConfig {
    /// Days forecast ahead (daily series; weekly series get the same span in weeks, rounded up).
    pub horizon_days: usize,
    /// Rolling-origin backtest windows a series' model is chosen on.
    pub backtest_windows: usize,
    /// The IANA zone whose calendar days the series count in (the merchant's business day:
    /// Double 11 starts at midnight in Beijing, 16:00 UTC).
    pub timezone: String,
    /// The global gradient-boosted model: rounds, learning rate, depth.
    pub iterations: usize,
    pub learning_rate: f32,
    pub max_depth: usize,
    /// Sales promotions the global model learns from. `from`/`to` are `MM-DD` for a window
    /// every year or `YYYY-MM-DD` for one that moves (Chinese New Year, Prime Day).
    pub promotions: Vec<PromotionWindow>,
    /// `[forecast.replenishment]`: when and how much to reorder.
    pub replenishment: ReplenishmentConfig,
    /// `[forecast.prices]`: when a platform's price is worth an alert.
    pub prices: PriceMonitorConfig,
}

/// Replenishment (`[forecast.replenishment]`): the lead time and service level every golden
/// product is planned with, unless a rule for its id or category says otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplenishmentConfig {
    /// Days from placing an order to the stock being sellable.
    pub lead_time_days: usize,
    /// Days between two orders: an order covers the lead time plus this.
    pub review_days: usize,
    /// Chance that demand over the lead time is covered (0.5–0.9999): sets the safety stock.
    pub service_level: f64,
    /// The stock-out risk is for this many days ahead.
    pub risk_days: usize,
    /// Per product or category: the first rule that matches wins.
    pub rules: Vec<ReplenishmentRule>,
}

impl Default for ReplenishmentConfig {
    fn default() -> Self {
        Self {
            lead_time_days: 7,
            review_days: 7,
            service_level: 0.95,
            risk_days: 14,
            rules: Vec::new(),
        }
    }
}

/// One `[[forecast.replenishment.rules]]`: a golden product id or a golden category, and
/// what differs for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplenishmentRule {
    pub golden_id: Option<String>,
    pub category: Option<String>,
    pub lead_time_days: Option<usize>,
    pub review_days: Option<usize>,
    pub service_level: Option<f64>,
}

/// Price monitoring (`[forecast.prices]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriceMonitorConfig {
    /// Alert when a platform's price is this share below every other platform's (0.10: 10 %).
    pub undercut_share: f64,
    /// Alert when a platform's price moves by this share from one observation to the next.
    pub sharp_move_share: f64,
    /// A platform's price counts for comparison this many days after its last sale.
    pub stale_days: usize,
}

impl Default for PriceMonitorConfig {
    fn default() -> Self {
        Self {
            undercut_share: 0.10,
            sharp_move_share: 0.25,
            stale_days: 90,
        }
    }
}

/// One promotion window of `[[forecast.promotions]]`, both ends inclusive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromotionWindow {
    pub name: String,
    pub from: String,
    pub to: String,
}

/// The days a [`PromotionWindow`] covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromotionSpan {
    /// Month-day ends, every year; `from > to` wraps the new year.
    EveryYear { from: (u32, u32), to: (u32, u32) },
    Once {
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    },
}

impl PromotionWindow {
    fn new(name: &str, from: &str, to: &str) -> Self {
        PromotionWindow {
            name: name.into(),
            from: from.into(),
            to: to.into(),
        }
    }

    /// The window's days, or what is wrong with its ends.
    pub fn span(&self) -> std::result::Result<PromotionSpan, String> {
        enum End {
            MonthDay((u32, u32)),
            Date(chrono::NaiveDate),
        }
        let parse = |text: &str| -> std::result::Result<End, String> {
            use chrono::{Datelike, NaiveDate};
            if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                return Ok(End::Date(date));
            }
            // Checked against a leap year so that 02-29 is allowed.
            NaiveDate::parse_from_str(&format!("2024-{text}"), "%Y-%m-%d")
                .map(|d| End::MonthDay((d.month(), d.day())))
                .map_err(|_| format!("{text:?} is not MM-DD or YYYY-MM-DD"))
        };
        match (parse(&self.from)?, parse(&self.to)?) {
            (End::MonthDay(from), End::MonthDay(to)) => Ok(PromotionSpan::EveryYear { from, to }),
            (End::Date(from), End::Date(to)) if from <= to => Ok(PromotionSpan::Once { from, to }),
            (End::Date(_), End::Date(_)) => {
                Err(format!("`from` {} is after `to` {}", self.from, self.to))
            }
            _ => Err("give both ends as MM-DD (every year) or both as YYYY-MM-DD (once)".into()),
        }
    }
}

impl Default for ForecastConfig {
    fn default() -> Self {
        let w = PromotionWindow::new;
        Self {
            horizon_days: 28,
            backtest_windows: 3,
            timezone: "Asia/Shanghai".into(),
            iterations: 200,
            learning_rate: 0.05,
            max_depth: 5,
            promotions: vec![
                w("618", "06-01", "06-18"),
                w("Double 11", "11-01", "11-11"),
                w("Double 12", "12-12", "12-12"),
                // The fortnight from New Year's Eve: couriers stop, sales fall.
                w("Chinese New Year", "2024-02-09", "2024-02-23"),
                w("Chinese New Year", "2025-01-28", "2025-02-11"),
                w("Chinese New Year", "2026-02-16", "2026-03-02"),
                w("Chinese New Year", "2027-02-05", "2027-02-19"),
                w("Prime Day", "2024-07-16", "2024-07-17"),
                w("Prime Day", "2025-07-08", "2025-07-11"),
                w("Prime Day", "2026-07-14", "2026-07-15"),
                w("Black Friday", "2024-11-29", "2024-12-02"),
                w("Black Friday", "2025-11-28", "2025-12-01"),
                w("Black Friday", "2026-11-27", "2026-11-30"),
            ],
            replenishment: ReplenishmentConfig::default(),
            prices: PriceMonitorConfig::default(),
        }
    }
}

/// Review sentiment (`[sentiment]`): what the classifier is trained on and when a product's
/// reviews are worth an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SentimentConfig {
    /// Public labelled review sets to train on besides the project's own star ratings:
    /// directories holding ChnSentiCorp (`train.tsv`, `dev.tsv`, `test.tsv`) or amazon-cells
    /// (`amazon_cells_labelled.txt`), relative to the project.
    pub training_data: Vec<std::path::PathBuf>,
    /// Use the project's star ratings as weak labels (4–5 positive, 1–2 negative, 3 neutral).
    pub weak_labels: bool,
    /// Stack a head on the encoder's vectors with the n-gram model.
    pub encoder_head: bool,
    /// The share of reviews, those the n-gram model is least sure of, that the encoder reads
    /// (1 = every review). The encoder is nearly all of the classifier's time; 0.2 was the
    /// best on ChnSentiCorp's dev split, at 4.4× the speed of encoding every review.
    pub encoder_share: f64,
    /// Days of reviews an alert window covers; windows end every 7 days.
    pub alert_window_days: u32,
    /// Mentions a window needs before it can raise an alert.
    pub alert_min_reviews: usize,
    /// How far above its own history a window's negative share must be (0.3 = 30 points).
    pub alert_min_jump: f64,
    /// Largest one-sided exact binomial p-value of the window's negative count against the
    /// history's share (the normal approximation's z-score overstates a few mentions against
    /// a small share: 2 of 4 against 3 % is z 5.9 but p 0.005).
    pub alert_max_p_value: f64,
}

impl Default for SentimentConfig {
    fn default() -> Self {
        Self {
            training_data: Vec::new(),
            weak_labels: true,
            encoder_head: true,
            encoder_share: 0.2,
            alert_window_days: 21,
            alert_min_reviews: 4,
            alert_min_jump: 0.3,
            alert_max_p_value: 0.001,
        }
    }
}

/// Fraud and risk (`[risk]`): what makes a ring, and the labels a project has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    /// A CSV of decided orders (`platform,order_id,is_fraud`: review decisions, chargebacks),
    /// relative to the project. With enough of both classes the evidence is combined by a
    /// logistic regression fitted to them; without, by the unsupervised tail score.
    pub labels: Option<std::path::PathBuf>,
    /// Fewest distinct customers a dense block needs to be called a ring.
    pub ring_min_members: usize,
    /// A device, IP or address shared by more customers than this is a public one (a café's
    /// network, a parcel locker) and links nobody.
    pub max_key_members: usize,
    /// Dense blocks searched per component of shared keys.
    pub max_blocks_per_component: usize,
    /// Least FRAUDAR density (edge weight per member and key) of a ring. Four fresh
    /// accounts on one device and IP buying one listing score about 0.7; a device three
    /// unmerged accounts of one household share, about 0.35.
    pub ring_min_density: f64,
    /// Reasons kept per score.
    pub reasons: usize,
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            labels: None,
            ring_min_members: 3,
            max_key_members: 40,
            max_blocks_per_component: 4,
            ring_min_density: 0.6,
            reasons: 3,
        }
    }
}

/// Purchase propensity, churn and value (`[propensity]`): how the classifiers are trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PropensityConfig {
    /// Training cut-offs a month apart; each adds every active customer as a training row.
    pub training_cutoffs: usize,
    /// At most this many training rows per classifier (a deterministic sample beyond it).
    pub max_training_rows: usize,
    /// Gradient-boosted trees: rounds, learning rate, depth.
    pub iterations: usize,
    pub learning_rate: f32,
    pub max_depth: usize,
    /// Drivers stored per customer.
    pub drivers: usize,
}

impl Default for PropensityConfig {
    fn default() -> Self {
        Self {
            training_cutoffs: 4,
            max_training_rows: 400_000,
            iterations: 150,
            learning_rate: 0.05,
            max_depth: 4,
            drivers: 3,
        }
    }
}

/// What a recommendation may not suggest again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecsExclusion {
    /// Everything may be suggested again (consumables, repeat purchases).
    None,
    /// Golden products the customer bought on any platform.
    Bought,
    /// Bought products and their colour/capacity variants (another colour of the phone
    /// they just bought is not a useful suggestion). Not the default: shoppers do buy a
    /// sibling variant (a second capacity, a gift in another colour), and on the generated
    /// data this costs about a tenth of NDCG@10.
    BoughtAndVariants,
}

/// Recommendations (`[recs]`): how behaviour becomes interaction strength, and the models.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecsConfig {
    /// Weight of one event of each type; an order counts as a purchase.
    pub view_weight: f64,
    pub favorite_weight: f64,
    pub cart_weight: f64,
    pub purchase_weight: f64,
    /// An interaction's weight halves every this many days before the training cut-off.
    pub half_life_days: f64,
    pub exclude: RecsExclusion,
    /// iALS: latent factors, sweeps, L2 regularisation and confidence scale.
    pub factors: usize,
    pub iterations: usize,
    pub regularization: f64,
    pub alpha: f64,
    /// EASE's L2 regularisation (its one hyper-parameter).
    pub ease_lambda: f64,
    /// EASE holds a dense items × items matrix; above this many items item-kNN replaces it.
    pub max_ease_items: usize,
    /// Item-kNN: neighbours kept per item.
    pub neighbours: usize,
    /// Recommendations stored per customer by `train recs` (`recommend -k` reads at most this).
    pub store_k: usize,
}

impl Default for RecsConfig {
    fn default() -> Self {
        Self {
            view_weight: 1.0,
            favorite_weight: 2.0,
            cart_weight: 3.0,
            purchase_weight: 5.0,
            half_life_days: 180.0,
            exclude: RecsExclusion::Bought,
            // Chosen on a generated project of seed 3 (not the demo's 42): strong L2 keeps
            // iALS and EASE from memorising the heavy buyers.
            factors: 32,
            iterations: 10,
            regularization: 50.0,
            alpha: 10.0,
            ease_lambda: 200.0,
            max_ease_items: 20_000,
            neighbours: 100,
            store_k: 50,
        }
    }
}

/// Personal data beyond the built-in fields (name, phone, e-mail, address).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// More text fields to pseudonymise at ingest, as KIND.FIELD (e.g. "orders.ip").
    #[serde(default)]
    pub pii: Vec<String>,
}

impl PrivacyConfig {
    /// The fields of `kind` this project marks as personal.
    pub fn marked(&self, kind: EntityKind) -> Vec<String> {
        self.pii
            .iter()
            .filter_map(|k| k.split_once('.'))
            .filter(|(k, _)| k.parse::<EntityKind>().ok() == Some(kind))
            .map(|(_, f)| f.to_string())
            .collect()
    }
}

/// Customer identity resolution (`[identity]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// A person holds at most one account per platform: two accounts of one platform are
    /// never linked (switch off for platforms where people keep several accounts).
    #[serde(default = "default_true")]
    pub one_account_per_platform: bool,
    /// A phone, e-mail or device held by more accounts than this is shared (a family phone,
    /// a brushing ring's device) and is no evidence — as is one held by a burst of new
    /// accounts under different names, whatever their number; an address held by more is
    /// shared only when nearly each of its accounts has another name (a parcel station), else
    /// it stays evidence weighted by its frequency.
    #[serde(default = "default_max_key_accounts")]
    pub max_key_accounts: usize,
    /// Match probability from which a probabilistic link joins two accounts.
    #[serde(default = "default_identity_threshold")]
    pub threshold: f64,
}

fn default_max_key_accounts() -> usize {
    6
}
fn default_identity_threshold() -> f64 {
    0.9
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            one_account_per_platform: true,
            max_key_accounts: default_max_key_accounts(),
            threshold: default_identity_threshold(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectSection {
    #[serde(default = "default_name")]
    pub name: String,
    /// Every price is also stored converted to this currency.
    #[serde(default = "default_base_currency")]
    pub base_currency: String,
}

impl Default for ProjectSection {
    fn default() -> Self {
        Self {
            name: default_name(),
            base_currency: default_base_currency(),
        }
    }
}

fn default_name() -> String {
    "shopfuse".into()
}
fn default_base_currency() -> String {
    "CNY".into()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurrencySection {
    /// Units of the base currency for one unit of each currency (the base itself is 1).
    #[serde(default)]
    pub rates: BTreeMap<String, f64>,
}

impl CurrencySection {
    pub fn rate_to_base(&self, currency: &str, base: &str) -> Option<f64> {
        if currency.eq_ignore_ascii_case(base) {
            return Some(1.0);
        }
        self.rates
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(currency))
            .map(|(_, v)| *v)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    Tsv,
    Json,
    Jsonl,
    Parquet,
}

impl FileFormat {
    pub fn from_path(path: &Path) -> Option<FileFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "csv" => FileFormat::Csv,
            "tsv" | "tab" => FileFormat::Tsv,
            "json" => FileFormat::Json,
            "jsonl" | "ndjson" => FileFormat::Jsonl,
            "parquet" | "pq" => FileFormat::Parquet,
            _ => return None,
        })
    }
}

/// Where a canonical field's value comes from in a source file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldSource {
    /// The name of the source column.
    Column(String),
    Spec(FieldSpec),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Source column; absent when only `default` is given.
    #[serde(default)]
    pub column: Option<String>,
    /// A chrono format for timestamp fields, e.g. "%d.%m.%Y %H:%M".
    #[serde(default)]
    pub format: Option<String>,
    /// Used when the column is absent or empty.
    #[serde(default)]
    pub default: Option<String>,
}

impl FieldSource {
    pub fn column(&self) -> Option<&str> {
        match self {
            FieldSource::Column(c) => Some(c),
            FieldSource::Spec(s) => s.column.as_deref(),
        }
    }
    pub fn format(&self) -> Option<&str> {
        match self {
            FieldSource::Column(_) => None,
            FieldSource::Spec(s) => s.format.as_deref(),
        }
    }
    pub fn default_value(&self) -> Option<&str> {
        match self {
            FieldSource::Column(_) => None,
            FieldSource::Spec(s) => s.default.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique name of the source, e.g. "taobao_orders".
    pub name: String,
    /// Platform the export comes from: taobao, jd, amazon, own_shop, app, social, …
    pub platform: String,
    pub kind: EntityKind,
    /// Path or glob relative to the project directory.
    pub path: String,
    /// Taken from the file extension when absent.
    #[serde(default)]
    pub format: Option<FileFormat>,
    /// "auto" (default) detects UTF-8, UTF-16 with BOM, GBK/GB18030 and others.
    #[serde(default)]
    pub encoding: Option<String>,
    /// A built-in field mapping for a common export shape (taobao, jd, amazon, canonical).
    #[serde(default)]
    pub preset: Option<String>,
    /// IANA zone for timestamps without an offset.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Currency of prices written without a symbol or code.
    #[serde(default)]
    pub currency: Option<String>,
    /// Canonical field → source column (overrides the preset).
    #[serde(default)]
    pub fields: BTreeMap<String, FieldSource>,
    /// Canonical field → (source value → canonical value), e.g. event_type 浏览 → view.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// The files are logs still being appended to (the API's event log): only their whole
    /// lines are read, so an event half-written at that moment waits for the next run.
    /// Left out of the serialised form when false, so declared sources keep their
    /// fingerprints.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub append_only: bool,
}

impl SourceConfig {
    /// Changes whenever anything that shapes the parsed rows changes, so a file is ingested
    /// again after its source's mapping is edited, and not otherwise.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_vec(self).expect("source config serialises");
        hex::encode(&Sha256::digest(&json)[..8])
    }
}

/// How a missing value of one field is filled in by the clean stage.
#[derive(Debug, Clone, PartialEq)]
pub enum MissingPolicy {
    Leave,
    Mean,
    Median,
    /// Linear in time between the neighbouring known values of the same source.
    Interpolate,
    Zero,
    /// `constant:VALUE` in the file.
    Constant(String),
}

impl MissingPolicy {
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "leave" => MissingPolicy::Leave,
            "mean" => MissingPolicy::Mean,
            "median" => MissingPolicy::Median,
            "interpolate" => MissingPolicy::Interpolate,
            "zero" => MissingPolicy::Zero,
            other => match other.strip_prefix("constant:") {
                Some(v) => MissingPolicy::Constant(v.to_string()),
                None => {
                    return Err(format!(
                        "unknown missing-value policy {other:?}; use leave, mean, median, interpolate, zero or constant:VALUE"
                    ))
                }
            },
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanConfig {
    /// "kind.field" → policy, e.g. `"orders.quantity" = "constant:1"`.
    #[serde(default = "default_missing")]
    pub missing: BTreeMap<String, String>,
    #[serde(default)]
    pub outliers: OutlierConfig,
    /// Two events of one account, listing and type closer than this are one event sent twice.
    #[serde(default = "default_event_window")]
    pub duplicate_event_window_secs: i64,
}

fn default_missing() -> BTreeMap<String, String> {
    BTreeMap::from([("orders.quantity".to_string(), "constant:1".to_string())])
}
fn default_event_window() -> i64 {
    2
}

impl Default for CleanConfig {
    fn default() -> Self {
        Self {
            missing: default_missing(),
            outliers: OutlierConfig::default(),
            duplicate_event_window_secs: default_event_window(),
        }
    }
}

/// How one field of a golden product is chosen from its listings' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldRule {
    /// The value of the listing whose platform comes first in `source_priority`.
    SourcePriority,
    /// The value of the most recently listed listing.
    MostRecent,
    /// The most frequent value (ties: source priority).
    Majority,
    /// The longest value (ties: source priority): the most complete title or description.
    MostComplete,
    /// The median of the numeric values.
    Median,
}

/// The resolve stage: which listings are the same product, and their golden records.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveConfig {
    /// Platforms from most to least trusted, for `source_priority` and for ties.
    #[serde(default = "default_source_priority")]
    pub source_priority: Vec<String>,
    /// A product has at most one listing per platform (one shop per platform export); two
    /// listings of one platform are never put in one cluster.
    #[serde(default = "default_true")]
    pub one_listing_per_platform: bool,
    /// Golden field → rule. Fields: title, brand, category, model_code, gtin, color,
    /// capacity, price_base, listed_at.
    #[serde(default = "default_field_rules")]
    pub fields: BTreeMap<String, FieldRule>,
    /// Nearest neighbours per listing and other platform in the title-embedding index.
    #[serde(default = "default_knn")]
    pub knn: usize,
    /// Candidates kept per listing and other platform (the most similar by embedding and
    /// TF-IDF cosine, from either side), besides identifier and reviewed pairs.
    #[serde(default = "default_max_candidates_per_platform")]
    pub max_candidates_per_platform: usize,
    /// Trees per bag of the pair model.
    #[serde(default = "default_trees")]
    pub trees: usize,
    /// The cross-encoder that re-reads the pairs the trees are least sure of.
    #[serde(default)]
    pub cross_encoder: CrossEncoderConfig,
}

/// `[resolve.cross_encoder]`: a transformer (all-MiniLM-L6-v2, fine-tuned) that reads both
/// listings of a candidate pair as one text. It runs only on the pairs whose tree probability
/// lies in a band around the threshold, at most `max_pairs` of them, so its cost is bounded
/// whatever the catalogue's size; their probability becomes the stack of both models' log-odds
/// with a weight chosen on the held-out labelled pairs.
///
/// Off by default: it needs the MiniLM files (`scripts/fetch-models.sh --minilm`) and, without
/// a `model`, a few minutes of training on the project's GTIN-labelled pairs at the first run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossEncoderConfig {
    #[serde(default)]
    pub enabled: bool,
    /// A fine-tuned cross-encoder (`shopfuse train cross-encoder --out DIR`), relative to the
    /// project. Unset: one is trained on this project's labelled candidate pairs and kept under
    /// `.shopfuse/models/`, reused while those pairs and the settings are unchanged.
    #[serde(default)]
    pub model: Option<PathBuf>,
    /// Half the band's width in log-odds around the threshold: 2.0 re-reads the pairs the
    /// trees give between about 12 % and 88 % at a threshold of 50 %.
    #[serde(default = "default_band_log_odds")]
    pub band_log_odds: f64,
    /// Pairs re-read at most (the nearest the threshold first): the bound on its cost.
    #[serde(default = "default_cross_max_pairs")]
    pub max_pairs: usize,
    /// Labelled pairs it is trained on at most (a quarter as many more stop the training).
    #[serde(default = "default_cross_train_pairs")]
    pub max_train_pairs: usize,
    /// Passes over the training pairs at most (training stops early when validation F1 drops).
    #[serde(default = "default_cross_epochs")]
    pub epochs: usize,
}

fn default_band_log_odds() -> f64 {
    2.0
}
fn default_cross_max_pairs() -> usize {
    20_000
}
fn default_cross_train_pairs() -> usize {
    3_000
}
fn default_cross_epochs() -> usize {
    3
}

impl Default for CrossEncoderConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            model: None,
            band_log_odds: default_band_log_odds(),
            max_pairs: default_cross_max_pairs(),
            max_train_pairs: default_cross_train_pairs(),
            epochs: default_cross_epochs(),
        }
    }
}

fn default_source_priority() -> Vec<String> {
    ["own_shop", "amazon", "jd", "taobao", "app", "social"]
        .map(String::from)
        .to_vec()
}
/// The rule of every golden field a project does not set in `[resolve.fields]`.
pub fn default_field_rules() -> BTreeMap<String, FieldRule> {
    use FieldRule::*;
    BTreeMap::from(
        [
            ("title", SourcePriority),
            ("brand", Majority),
            ("category", SourcePriority),
            ("model_code", Majority),
            ("gtin", Majority),
            ("color", Majority),
            ("capacity", Majority),
            ("price_base", Median),
            ("listed_at", MostRecent),
        ]
        .map(|(f, r)| (f.to_string(), r)),
    )
}
fn default_knn() -> usize {
    10
}
fn default_max_candidates_per_platform() -> usize {
    5
}
fn default_trees() -> usize {
    300
}

impl Default for ResolveConfig {
    fn default() -> Self {
        Self {
            source_priority: default_source_priority(),
            one_listing_per_platform: true,
            fields: default_field_rules(),
            knn: default_knn(),
            max_candidates_per_platform: default_max_candidates_per_platform(),
            trees: default_trees(),
            cross_encoder: CrossEncoderConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutlierMethod {
    Iqr,
    Zscore,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutlierConfig {
    #[serde(default = "default_method")]
    pub method: OutlierMethod,
    /// Tukey fence multiplier for IQR (on log-scaled values).
    #[serde(default = "default_iqr_k")]
    pub iqr_k: f64,
    /// |z| above which a value is flagged for the z-score method.
    #[serde(default = "default_z")]
    pub z_threshold: f64,
    /// Isolation-forest anomaly score above which an order is flagged (0.5 = average).
    #[serde(default = "default_forest_threshold")]
    pub isolation_forest_threshold: f64,
    #[serde(default = "default_true")]
    pub isolation_forest: bool,
}

fn default_method() -> OutlierMethod {
    OutlierMethod::Iqr
}
fn default_iqr_k() -> f64 {
    3.0
}
fn default_z() -> f64 {
    4.0
}
fn default_forest_threshold() -> f64 {
    0.7
}
fn default_true() -> bool {
    true
}

impl Default for OutlierConfig {
    fn default() -> Self {
        Self {
            method: default_method(),
            iqr_k: default_iqr_k(),
            z_threshold: default_z(),
            isolation_forest_threshold: default_forest_threshold(),
            isolation_forest: true,
        }
    }
}

impl ProjectConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).at(path)?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let config: ProjectConfig = toml::from_str(text).map_err(|e| CoreError::Config {
            path: path.into(),
            message: e.to_string(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        self.validate_sources(path)?;
        self.validate_stage_settings(path)?;
        self.validate_clean(path)?;
        self.validate_privacy(path)?;
        self.validate_recs(path)?;
        self.validate_store(path)?;
        self.validate_forecast(path)
    }

    /// `[store] url`: a URL with a scheme, and no password in it.
    fn validate_store(&self, path: &Path) -> Result<()> {
        let Some(url) = &self.store.url else {
            return Ok(());
        };
        let bad = |message: String| CoreError::Config {
            path: path.into(),
            message,
        };
        let parsed = url::Url::parse(url).map_err(|e| {
            bad(format!(
                "[store] url = {url:?} is not a URL ({e}); write e.g. \"file:///srv/shopfuse/shop-a\""
            ))
        })?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad(format!(
                "[store] url = {url:?} carries credentials; take them out of the file and set \
                 them in the environment of every process that opens the project"
            )));
        }
        Ok(())
    }

    /// `[forecast]`: a horizon and a window at least, a known zone, promotion ends that parse.
    fn validate_forecast(&self, path: &Path) -> Result<()> {
        let err = invalid(path);
        let f = &self.forecast;
        if f.horizon_days == 0 || f.backtest_windows == 0 || f.iterations == 0 || f.max_depth == 0 {
            return Err(err(
                "[forecast] horizon_days, backtest_windows, iterations and max_depth must be at least 1".into(),
            ));
        }
        if f.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(err(format!(
                "[forecast] timezone {:?} is not an IANA time zone (e.g. \"Asia/Shanghai\")",
                f.timezone
            )));
        }
        for (i, w) in f.promotions.iter().enumerate() {
            w.span().map_err(|message| {
                err(format!(
                    "[[forecast.promotions]] #{} ({:?}): {message}",
                    i + 1,
                    w.name
                ))
            })?;
        }
        self.validate_replenishment(path)?;
        let p = &f.prices;
        if !(0.0..1.0).contains(&p.undercut_share) || p.sharp_move_share <= 0.0 {
            return Err(err(format!(
                "[forecast.prices] undercut_share must lie in [0, 1) and sharp_move_share be above 0 (got {} and {})",
                p.undercut_share, p.sharp_move_share
            )));
        }
        Ok(())
    }

    /// `[forecast.replenishment]`: service levels in (0.5, 1), and lead time plus review
    /// within the forecast horizon (the plan needs the demand over it).
    fn validate_replenishment(&self, path: &Path) -> Result<()> {
        let err = invalid(path);
        let f = &self.forecast;
        let r = &f.replenishment;
        let check = |entry: &str, lead: usize, review: usize, level: f64| {
            if !(0.5..1.0).contains(&level) {
                return Err(err(format!(
                    "{entry}: service_level {level} must lie in [0.5, 1), e.g. 0.95"
                )));
            }
            if lead == 0 || lead + review > f.horizon_days {
                return Err(err(format!(
                    "{entry}: lead_time_days ({lead}) must be at least 1 and lead_time_days + review_days ({}) at most [forecast] horizon_days ({})",
                    lead + review,
                    f.horizon_days
                )));
            }
            Ok(())
        };
        check(
            "[forecast.replenishment]",
            r.lead_time_days,
            r.review_days,
            r.service_level,
        )?;
        if r.risk_days == 0 || r.risk_days > f.horizon_days {
            return Err(err(format!(
                "[forecast.replenishment] risk_days ({}) must lie between 1 and [forecast] horizon_days ({})",
                r.risk_days, f.horizon_days
            )));
        }
        for (i, rule) in r.rules.iter().enumerate() {
            let entry = format!("[[forecast.replenishment.rules]] #{}", i + 1);
            if rule.golden_id.is_some() == rule.category.is_some() {
                return Err(err(format!(
                    "{entry}: give either golden_id or category, not both or neither"
                )));
            }
            check(
                &entry,
                rule.lead_time_days.unwrap_or(r.lead_time_days),
                rule.review_days.unwrap_or(r.review_days),
                rule.service_level.unwrap_or(r.service_level),
            )?;
        }
        Ok(())
    }

    /// Source names unique; every mapped field a field of its kind and read, not computed.
    fn validate_sources(&self, path: &Path) -> Result<()> {
        let err = invalid(path);
        let mut names = std::collections::BTreeSet::new();
        for s in &self.sources {
            if !names.insert(s.name.as_str()) {
                return Err(err(format!(
                    "source name {:?} is declared twice; names must be unique",
                    s.name
                )));
            }
            for field in s.fields.keys().chain(s.values.keys()) {
                if let Some((from, _)) = s.kind.field(field).and_then(|f| f.derived) {
                    return Err(err(format!(
                        "source {:?}: {field:?} is computed at ingest from {from:?} and cannot be mapped to a column",
                        s.name
                    )));
                }
                if s.kind.field(field).is_none() {
                    let known: Vec<_> = s.kind.fields().iter().map(|f| f.name).collect();
                    return Err(err(format!(
                        "source {:?}: {field:?} is not a field of {}; known fields: {}",
                        s.name,
                        s.kind,
                        known.join(", ")
                    )));
                }
            }
        }
        Ok(())
    }

    /// `[clean.missing]` keys are KIND.FIELD of a real field, with a known policy.
    fn validate_clean(&self, path: &Path) -> Result<()> {
        let err = invalid(path);
        for (key, policy) in &self.clean.missing {
            let (kind, field) = key.split_once('.').ok_or_else(|| {
                err(format!(
                    "[clean.missing] key {key:?} must be KIND.FIELD, e.g. orders.quantity"
                ))
            })?;
            let kind: EntityKind = kind
                .parse()
                .map_err(|e: String| err(format!("[clean.missing] {key:?}: {e}")))?;
            if kind.field(field).is_none() {
                return Err(err(format!(
                    "[clean.missing] {key:?}: {kind} has no field {field:?}"
                )));
            }
            MissingPolicy::parse(policy)
                .map_err(|e| err(format!("[clean.missing] {key:?}: {e}")))?;
        }
        Ok(())
    }

    /// `[privacy] pii` entries are text fields read from a source.
    fn validate_privacy(&self, path: &Path) -> Result<()> {
        let err = invalid(path);
        for key in &self.privacy.pii {
            let (kind, field) = key.split_once('.').ok_or_else(|| {
                err(format!(
                    "[privacy] pii entry {key:?} must be KIND.FIELD, e.g. orders.ip"
                ))
            })?;
            let kind: EntityKind = kind
                .parse()
                .map_err(|e: String| err(format!("[privacy] pii {key:?}: {e}")))?;
            match kind.field(field) {
                None => {
                    return Err(err(format!(
                        "[privacy] pii {key:?}: {kind} has no field {field:?}"
                    )))
                }
                Some(f) if f.ty != crate::schema::FieldType::Text || f.derived.is_some() => {
                    return Err(err(format!(
                        "[privacy] pii {key:?}: only text fields read from a source can be pseudonymised"
                    )))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// `[resolve]`, `[identity]` and `[currency.rates]` values in their ranges.
    fn validate_stage_settings(&self, path: &Path) -> Result<()> {
        let err = invalid(path);
        if self.resolve.max_candidates_per_platform < 2 {
            return Err(err(format!(
                "[resolve] max_candidates_per_platform = {}: keep at least 2 (a pair is compared with the best other candidate of its listings)",
                self.resolve.max_candidates_per_platform
            )));
        }
        let cross = &self.resolve.cross_encoder;
        if !(cross.band_log_odds > 0.0 && cross.band_log_odds.is_finite())
            || cross.max_pairs == 0
            || cross.max_train_pairs < 20
            || cross.epochs == 0
        {
            return Err(err(format!(
                "[resolve.cross_encoder] band_log_odds must be a positive number (is {}), max_pairs and epochs at least 1 (are {} and {}), max_train_pairs at least 20 (is {})",
                cross.band_log_odds, cross.max_pairs, cross.epochs, cross.max_train_pairs
            )));
        }
        if !(0.0..1.0).contains(&self.identity.threshold) || self.identity.max_key_accounts < 2 {
            return Err(err(format!(
                "[identity] threshold must be in [0, 1) (is {}) and max_key_accounts at least 2 (is {})",
                self.identity.threshold, self.identity.max_key_accounts
            )));
        }
        if !(0.0..=1.0).contains(&self.sentiment.encoder_share) {
            return Err(err(format!(
                "[sentiment] encoder_share = {}: a share of the reviews, from 0 to 1",
                self.sentiment.encoder_share
            )));
        }
        for (cur, rate) in &self.currency.rates {
            if !(rate.is_finite() && *rate > 0.0) {
                return Err(err(format!(
                    "[currency.rates] {cur} = {rate}: a rate must be a positive number"
                )));
            }
        }
        Ok(())
    }

    /// `[recs]` sizes at least 1, rates positive, weights not negative (NaN fails).
    fn validate_recs(&self, path: &Path) -> Result<()> {
        let err = invalid(path);
        let r = &self.recs;
        // Written so that NaN fails too.
        let positive = |v: f64| v > 0.0;
        let non_negative = |v: f64| v >= 0.0;
        if r.factors == 0
            || r.iterations == 0
            || r.store_k == 0
            || r.neighbours == 0
            || !positive(r.half_life_days)
            || !positive(r.ease_lambda)
            || !positive(r.regularization)
            || !non_negative(r.alpha)
            || [
                r.view_weight,
                r.favorite_weight,
                r.cart_weight,
                r.purchase_weight,
            ]
            .into_iter()
            .any(|w| !non_negative(w))
        {
            return Err(err(
                "[recs] factors, iterations, neighbours and store_k must be at least 1, half_life_days, ease_lambda and regularization above 0, alpha and the event weights not negative".into(),
            ));
        }
        Ok(())
    }

    pub fn missing_policy(&self, kind: EntityKind, field: &str) -> MissingPolicy {
        self.clean
            .missing
            .get(&format!("{kind}.{field}"))
            .and_then(|p| MissingPolicy::parse(p).ok())
            .unwrap_or(MissingPolicy::Leave)
    }
}

/// The error for an invalid setting in the project file at `path`.
fn invalid(path: &Path) -> impl Fn(String) -> CoreError + '_ {
    move |message| CoreError::Config {
        path: path.into(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[project]
name = "demo"
base_currency = "CNY"

[currency.rates]
USD = 7.1

[[sources]]
name = "taobao_orders"
platform = "taobao"
kind = "orders"
path = "data/taobao/orders*.csv"
preset = "taobao"
[sources.fields]
status = "订单状态"
ordered_at = { column = "下单时间", format = "%Y/%m/%d %H:%M" }
[sources.values.status]
"已完成" = "completed"

[clean.missing]
"products.stock" = "median"
"#;

    #[test]
    fn replenishment_rules_are_checked_against_the_horizon() {
        let with = |extra: &str| {
            ProjectConfig::parse(&format!("{EXAMPLE}{extra}"), Path::new("shopfuse.toml"))
        };
        let ok = with("\n[forecast.replenishment]\nlead_time_days = 10\n[[forecast.replenishment.rules]]\ncategory = \"手机\"\nservice_level = 0.99\n").unwrap();
        assert_eq!(ok.forecast.replenishment.lead_time_days, 10);
        assert_eq!(ok.forecast.replenishment.rules[0].service_level, Some(0.99));
        let long =
            with("\n[[forecast.replenishment.rules]]\ngolden_id = \"GP1\"\nlead_time_days = 25\n")
                .unwrap_err()
                .to_string();
        assert!(
            long.contains("rules]] #1") && long.contains("horizon_days (28)"),
            "{long}"
        );
        let both =
            with("\n[[forecast.replenishment.rules]]\ngolden_id = \"GP1\"\ncategory = \"x\"\n")
                .unwrap_err()
                .to_string();
        assert!(both.contains("either golden_id or category"), "{both}");
        let level = with("\n[forecast.replenishment]\nservice_level = 1.0\n")
            .unwrap_err()
            .to_string();
        assert!(level.contains("service_level 1"), "{level}");
    }

    #[test]
    fn cross_encoder_settings_are_read_and_checked() {
        let with = |extra: &str| {
            ProjectConfig::parse(&format!("{EXAMPLE}{extra}"), Path::new("shopfuse.toml"))
        };
        let off = with("").unwrap().resolve.cross_encoder;
        assert_eq!(off, CrossEncoderConfig::default());
        assert!(!off.enabled);
        let on = with(
            "\n[resolve.cross_encoder]\nenabled = true\nmodel = \"models/ce\"\nmax_pairs = 500\n",
        )
        .unwrap()
        .resolve
        .cross_encoder;
        assert!(on.enabled);
        assert_eq!(on.model.as_deref(), Some(Path::new("models/ce")));
        assert_eq!((on.max_pairs, on.band_log_odds), (500, 2.0));
        for bad in [
            "band_log_odds = 0.0",
            "max_pairs = 0",
            "epochs = 0",
            "max_train_pairs = 5",
        ] {
            let e = with(&format!("\n[resolve.cross_encoder]\n{bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("[resolve.cross_encoder]"), "{bad}: {e}");
        }
    }

    #[test]
    fn parses_a_full_config() {
        let c = ProjectConfig::parse(EXAMPLE, Path::new("shopfuse.toml")).unwrap();
        assert_eq!(c.sources.len(), 1);
        assert_eq!(
            c.sources[0].fields["ordered_at"].format(),
            Some("%Y/%m/%d %H:%M")
        );
        assert_eq!(c.currency.rate_to_base("usd", "CNY"), Some(7.1));
        assert_eq!(
            c.missing_policy(EntityKind::Products, "stock"),
            MissingPolicy::Median
        );
    }

    #[test]
    fn unknown_field_is_named_in_the_error() {
        let bad = EXAMPLE.replace("status = \"订单状态\"", "staus = \"订单状态\"");
        let e = ProjectConfig::parse(&bad, Path::new("p/shopfuse.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("p/shopfuse.toml") && e.contains("\"staus\""),
            "{e}"
        );
    }

    #[test]
    fn fingerprint_changes_with_mapping() {
        let c = ProjectConfig::parse(EXAMPLE, Path::new("x")).unwrap();
        let mut s = c.sources[0].clone();
        let before = s.fingerprint();
        s.timezone = Some("UTC".into());
        assert_ne!(before, s.fingerprint());
    }
}
