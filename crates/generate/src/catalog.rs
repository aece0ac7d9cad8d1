//! The real-world catalogue behind the data set: product families (one model line) with
//! colour and capacity variants, each variant a distinct product with its own GTIN, and the
//! way each platform titles and prices it.

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Which product line a family belongs to, with the words platforms use for it.
struct CategorySpec {
    en: &'static str,
    zh: &'static str,
    /// Marketing words appended to titles (Chinese, English).
    blurb_zh: &'static [&'static str],
    blurb_en: &'static [&'static str],
    capacities: &'static [&'static str],
    colours: &'static [(&'static str, &'static str)],
    price_cny: (f64, f64),
    lines: &'static [LineSpec],
}

struct LineSpec {
    brand_en: &'static str,
    brand_zh: &'static str,
    series: &'static str,
    models: &'static [&'static str],
    /// Model-code pattern: `{n}` becomes a per-family number.
    code: &'static str,
}

const PHONE_COLOURS: &[(&str, &str)] = &[
    ("Black", "黑色"),
    ("White", "白色"),
    ("Blue", "蓝色"),
    ("Purple", "紫色"),
    ("Green", "绿色"),
    ("Gold", "金色"),
];
const PLAIN_COLOURS: &[(&str, &str)] = &[
    ("Black", "黑色"),
    ("Silver", "银色"),
    ("White", "白色"),
    ("Grey", "灰色"),
];

const CATEGORIES: &[CategorySpec] = &[
    CategorySpec {
        en: "Mobile Phones",
        zh: "手机",
        blurb_zh: &["5G手机", "全网通", "双卡双待", "官方正品", "国行"],
        blurb_en: &["Unlocked", "5G Smartphone", "Dual SIM"],
        capacities: &["128GB", "256GB", "512GB"],
        colours: PHONE_COLOURS,
        price_cny: (1999.0, 8999.0),
        lines: &[
            LineSpec {
                brand_en: "Apple",
                brand_zh: "苹果",
                series: "iPhone",
                models: &["13", "14", "14 Plus", "15", "15 Pro", "15 Pro Max"],
                code: "A2{n}",
            },
            LineSpec {
                brand_en: "Huawei",
                brand_zh: "华为",
                series: "Mate",
                models: &["50", "60", "60 Pro", "X5"],
                code: "ALN-AL{n}",
            },
            LineSpec {
                brand_en: "Xiaomi",
                brand_zh: "小米",
                series: "Xiaomi",
                models: &["13", "14", "14 Pro", "14 Ultra"],
                code: "2310{n}C",
            },
            LineSpec {
                brand_en: "Samsung",
                brand_zh: "三星",
                series: "Galaxy",
                models: &["S23", "S24", "S24 Ultra", "Z Flip5"],
                code: "SM-S9{n}",
            },
            LineSpec {
                brand_en: "OPPO",
                brand_zh: "OPPO",
                series: "Find",
                models: &["X6", "X7", "N3"],
                code: "PHZ{n}",
            },
            LineSpec {
                brand_en: "vivo",
                brand_zh: "维沃",
                series: "vivo X",
                models: &["90", "100", "100 Pro"],
                code: "V23{n}A",
            },
        ],
    },
    CategorySpec {
        en: "Headphones",
        zh: "耳机",
        blurb_zh: &["降噪耳机", "蓝牙耳机", "无线耳机"],
        blurb_en: &["Noise Cancelling", "Wireless Bluetooth Headphones"],
        capacities: &[],
        colours: PLAIN_COLOURS,
        price_cny: (399.0, 2999.0),
        lines: &[
            LineSpec {
                brand_en: "Sony",
                brand_zh: "索尼",
                series: "WH-1000",
                models: &["XM4", "XM5"],
                code: "WH-1000X{n}",
            },
            LineSpec {
                brand_en: "Apple",
                brand_zh: "苹果",
                series: "AirPods",
                models: &["Pro 2", "3", "Max"],
                code: "MQD{n}CH",
            },
            LineSpec {
                brand_en: "Huawei",
                brand_zh: "华为",
                series: "FreeBuds",
                models: &["Pro 3", "5i"],
                code: "T0{n}",
            },
            LineSpec {
                brand_en: "Bose",
                brand_zh: "博士",
                series: "QuietComfort",
                models: &["45", "Ultra"],
                code: "QC{n}",
            },
        ],
    },
    CategorySpec {
        en: "Digital Cameras",
        zh: "数码相机",
        blurb_zh: &["数码相机", "卡片机", "高清"],
        blurb_en: &["Digital Camera", "Compact Camera"],
        capacities: &[],
        colours: &[("Black", "黑色"), ("Silver", "银色")],
        price_cny: (899.0, 9999.0),
        lines: &[
            LineSpec {
                brand_en: "Sony",
                brand_zh: "索尼",
                series: "DSC",
                models: &["W830", "RX100M7", "HX99"],
                code: "DSC{n}",
            },
            LineSpec {
                brand_en: "Canon",
                brand_zh: "佳能",
                series: "PowerShot",
                models: &["G7 X Mark III", "SX740 HS"],
                code: "PSG{n}",
            },
            LineSpec {
                brand_en: "Fujifilm",
                brand_zh: "富士",
                series: "X",
                models: &["100V", "S20"],
                code: "FX{n}",
            },
        ],
    },
    CategorySpec {
        en: "Laptops",
        zh: "笔记本电脑",
        blurb_zh: &["轻薄本", "笔记本电脑", "办公"],
        blurb_en: &["Laptop", "Thin and Light Notebook"],
        capacities: &["256GB", "512GB", "1TB"],
        colours: &[("Silver", "银色"), ("Grey", "深空灰"), ("Black", "黑色")],
        price_cny: (3999.0, 15999.0),
        lines: &[
            LineSpec {
                brand_en: "Apple",
                brand_zh: "苹果",
                series: "MacBook Air",
                models: &["M2 13", "M3 15"],
                code: "MLY{n}CH",
            },
            LineSpec {
                brand_en: "Lenovo",
                brand_zh: "联想",
                series: "ThinkPad",
                models: &["X1 Carbon", "T14s"],
                code: "21HM{n}",
            },
            LineSpec {
                brand_en: "Huawei",
                brand_zh: "华为",
                series: "MateBook",
                models: &["14", "X Pro"],
                code: "KLVF-{n}",
            },
            LineSpec {
                brand_en: "Dell",
                brand_zh: "戴尔",
                series: "XPS",
                models: &["13", "15"],
                code: "XPS93{n}",
            },
        ],
    },
    CategorySpec {
        en: "Tablets",
        zh: "平板电脑",
        blurb_zh: &["平板电脑", "学习办公"],
        blurb_en: &["Tablet", "Wi-Fi"],
        capacities: &["64GB", "128GB", "256GB"],
        colours: &[("Grey", "深空灰"), ("Silver", "银色"), ("Blue", "蓝色")],
        price_cny: (1499.0, 6999.0),
        lines: &[
            LineSpec {
                brand_en: "Apple",
                brand_zh: "苹果",
                series: "iPad",
                models: &["Air 5", "10", "Pro 11"],
                code: "MM9{n}CH",
            },
            LineSpec {
                brand_en: "Xiaomi",
                brand_zh: "小米",
                series: "Xiaomi Pad",
                models: &["6", "6 Pro"],
                code: "2307{n}P",
            },
            LineSpec {
                brand_en: "Huawei",
                brand_zh: "华为",
                series: "MatePad",
                models: &["11", "Pro 13.2"],
                code: "DBR-W{n}",
            },
        ],
    },
    CategorySpec {
        en: "Skincare",
        zh: "护肤",
        blurb_zh: &["精华液", "补水保湿", "修护"],
        blurb_en: &["Serum", "Hydrating Face Serum"],
        capacities: &["30ml", "50ml", "100ml"],
        colours: &[],
        price_cny: (399.0, 1899.0),
        lines: &[
            LineSpec {
                brand_en: "Lancome",
                brand_zh: "兰蔻",
                series: "Advanced Genifique",
                models: &["Serum", "Eye Cream"],
                code: "LC{n}",
            },
            LineSpec {
                brand_en: "Estee Lauder",
                brand_zh: "雅诗兰黛",
                series: "Advanced Night Repair",
                models: &["Serum", "Eye Gel"],
                code: "EL{n}",
            },
            LineSpec {
                brand_en: "SK-II",
                brand_zh: "SK-II",
                series: "Facial Treatment",
                models: &["Essence", "Clear Lotion"],
                code: "SK{n}",
            },
            LineSpec {
                brand_en: "Shiseido",
                brand_zh: "资生堂",
                series: "Ultimune",
                models: &["Power Infusing Concentrate"],
                code: "SH{n}",
            },
        ],
    },
    CategorySpec {
        en: "Coffee",
        zh: "咖啡",
        blurb_zh: &["咖啡豆", "中度烘焙", "新鲜烘焙"],
        blurb_en: &["Whole Bean Coffee", "Medium Roast"],
        capacities: &["200g", "450g", "1kg"],
        colours: &[],
        price_cny: (59.0, 299.0),
        lines: &[
            LineSpec {
                brand_en: "Starbucks",
                brand_zh: "星巴克",
                series: "Coffee Beans",
                models: &["Pike Place", "Espresso Roast", "Veranda"],
                code: "SBX{n}",
            },
            LineSpec {
                brand_en: "Lavazza",
                brand_zh: "乐维萨",
                series: "Qualita",
                models: &["Oro", "Rossa"],
                code: "LVZ{n}",
            },
        ],
    },
    CategorySpec {
        en: "Home Appliances",
        zh: "家用电器",
        blurb_zh: &["家用", "无线", "智能"],
        blurb_en: &["Cordless", "Smart Home"],
        capacities: &[],
        colours: &[("Purple", "紫色"), ("Grey", "灰色"), ("White", "白色")],
        price_cny: (699.0, 4999.0),
        lines: &[
            LineSpec {
                brand_en: "Dyson",
                brand_zh: "戴森",
                series: "V",
                models: &["12 Detect Slim", "15 Detect"],
                code: "SV{n}",
            },
            LineSpec {
                brand_en: "Xiaomi",
                brand_zh: "米家",
                series: "Air Purifier",
                models: &["4", "4 Pro"],
                code: "AC-M{n}",
            },
            LineSpec {
                brand_en: "Philips",
                brand_zh: "飞利浦",
                series: "Airfryer",
                models: &["HD9252", "HD9280"],
                code: "HD9{n}",
            },
        ],
    },
];

pub fn category_names() -> Vec<&'static str> {
    CATEGORIES.iter().map(|c| c.en).collect()
}

/// One real-world item: a model in one colour and one capacity.
#[derive(Debug, Clone)]
pub struct Product {
    pub product_id: String,
    pub family_id: String,
    pub category: usize,
    pub brand_en: &'static str,
    pub brand_zh: &'static str,
    pub series: &'static str,
    pub model: String,
    pub model_code: String,
    pub gtin: String,
    pub colour: Option<(&'static str, &'static str)>,
    pub capacity: Option<&'static str>,
    pub price_cny: f64,
    /// Relative demand within its category.
    pub popularity: f64,
    /// Latent quality in 0..1: drives review ratings.
    pub quality: f64,
}

impl Product {
    pub fn category_en(&self) -> &'static str {
        CATEGORIES[self.category].en
    }
    pub fn category_zh(&self) -> &'static str {
        CATEGORIES[self.category].zh
    }
    fn spec(&self) -> &'static CategorySpec {
        &CATEGORIES[self.category]
    }

    /// Taobao-style: Chinese, words in shop-specific order, storage abbreviated ("256G"),
    /// sometimes full-width digits, promotional brackets.
    pub fn title_taobao(&self, rng: &mut ChaCha8Rng) -> String {
        let mut middle: Vec<String> = vec![format!("{} {}", self.series, self.model)];
        if let Some(c) = self.capacity {
            middle.push(if rng.random_bool(0.6) {
                c.replace("GB", "G").replace("TB", "T")
            } else {
                c.to_string()
            });
        }
        if let Some((_, zh)) = self.colour {
            middle.push(zh.to_string());
        }
        middle.push((*self.spec().blurb_zh.choose(rng).expect("blurb")).to_string());
        middle.shuffle(rng);
        let brand = if rng.random_bool(0.5) {
            self.brand_zh.to_string()
        } else {
            format!("{}/{}", self.brand_zh, self.brand_en)
        };
        let prefix = ["【官方正品】", "【现货速发】", "", "", "【顺丰包邮】"]
            .choose(rng)
            .expect("prefix")
            .to_string();
        let mut title = format!("{prefix}{brand} {}", middle.join(" "));
        if rng.random_bool(0.3) {
            title.push_str(&format!(" {}", self.category_zh()));
        }
        if rng.random_bool(0.1) {
            title = to_full_width_digits(&title);
        }
        title
    }

    /// JD-style: "Apple iPhone 15 (A3092) 256GB 蓝色 支持移动联通电信5G 双卡双待手机".
    pub fn title_jd(&self, rng: &mut ChaCha8Rng) -> String {
        let brand = if rng.random_bool(0.5) {
            format!("{}（{}）", self.brand_zh, self.brand_en)
        } else {
            self.brand_en.to_string()
        };
        let mut t = format!("{brand} {} {}", self.series, self.model);
        if rng.random_bool(0.5) {
            t.push_str(&format!(" ({})", self.model_code));
        }
        if let Some(c) = self.capacity {
            t.push_str(&format!(" {c}"));
        }
        if let Some((_, zh)) = self.colour {
            t.push_str(&format!(" {zh}"));
        }
        t.push_str(&format!(
            " {}",
            self.spec().blurb_zh.choose(rng).expect("blurb")
        ));
        t.push_str(self.category_zh());
        t
    }

    /// Amazon-style English: "Apple iPhone 15, 256GB, Blue - Unlocked".
    pub fn title_amazon(&self, rng: &mut ChaCha8Rng) -> String {
        let mut parts = vec![format!("{} {} {}", self.brand_en, self.series, self.model)];
        if let Some(c) = self.capacity {
            parts.push(c.to_string());
        }
        if let Some((en, _)) = self.colour {
            parts.push(en.to_string());
        }
        if rng.random_bool(0.3) {
            parts.push(self.model_code.clone());
        }
        format!(
            "{} - {}",
            parts.join(", "),
            self.spec().blurb_en.choose(rng).expect("blurb")
        )
    }

    /// Own shop: the clean catalogue name.
    pub fn title_own(&self) -> String {
        let mut t = format!("{} {} {}", self.brand_en, self.series, self.model);
        if let Some(c) = self.capacity {
            t.push_str(&format!(" {c}"));
        }
        if let Some((en, _)) = self.colour {
            t.push_str(&format!(" {en}"));
        }
        t
    }
}

fn to_full_width_digits(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

/// EAN-13 with a valid check digit; prefix 69 is China's GS1 range.
fn ean13(n: u64) -> String {
    let body = format!("69{:010}", n % 10_000_000_000);
    let sum: u32 = body
        .chars()
        .enumerate()
        .map(|(i, c)| c.to_digit(10).unwrap_or(0) * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// Builds `n` products. Families are taken round-robin across categories so a small data set
/// still spans every category; when the named models run out, later generations are invented
/// ("Mate 61", "Mate 62", …) the way real lines grow.
pub fn build_catalogue(n: usize, rng: &mut ChaCha8Rng) -> Vec<Product> {
    let mut products = Vec::with_capacity(n);
    let mut family_no = 0usize;
    let mut generation = 0usize;
    'outer: loop {
        for (ci, cat) in CATEGORIES.iter().enumerate() {
            for line in cat.lines {
                let base_models: Vec<String> = if generation == 0 {
                    line.models.iter().map(|m| m.to_string()).collect()
                } else {
                    vec![format!("{} Gen{}", line.models[0], generation + 1)]
                };
                for model in base_models {
                    family_no += 1;
                    let family_id = format!("F{family_no:04}");
                    let model_code = line
                        .code
                        .replace("{n}", &format!("{:03}", 100 + family_no * 7 % 900));
                    let base = rng.random_range(cat.price_cny.0..cat.price_cny.1);
                    let quality = rng.random_range(0.2..1.0);
                    let popularity = rng.random_range(0.2f64..1.0).powi(2);
                    // Not every colour and capacity exists for every model.
                    let mut colours: Vec<Option<(&str, &str)>> =
                        cat.colours.iter().copied().map(Some).collect();
                    colours.shuffle(rng);
                    colours.truncate(rng.random_range(1..=3.min(colours.len().max(1))));
                    if colours.is_empty() {
                        colours.push(None);
                    }
                    let caps: Vec<Option<&'static str>> = if cat.capacities.is_empty() {
                        vec![None]
                    } else {
                        cat.capacities.iter().copied().map(Some).collect()
                    };
                    for (ki, cap) in caps.iter().enumerate() {
                        for colour in &colours {
                            if products.len() >= n {
                                break 'outer;
                            }
                            let id = products.len() + 1;
                            products.push(Product {
                                product_id: format!("P{id:05}"),
                                family_id: family_id.clone(),
                                category: ci,
                                brand_en: line.brand_en,
                                brand_zh: line.brand_zh,
                                series: line.series,
                                model: model.clone(),
                                model_code: model_code.clone(),
                                gtin: ean13(rng.random_range(0..10_000_000_000)),
                                colour: *colour,
                                capacity: *cap,
                                price_cny: round2(base * (1.0 + 0.25 * ki as f64)),
                                popularity: popularity * rng.random_range(0.5..1.5),
                                quality,
                            });
                        }
                    }
                }
            }
        }
        generation += 1;
    }
    products
}

pub fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A fixed corpus of `n` product titles as the four platforms write them (Taobao and JD in
/// Chinese, Amazon and the own shop in English), interleaved; same `seed`, same corpus.
/// Benchmarks of the text encoder and of matching run on it.
pub fn title_corpus(seed: u64, n: usize) -> Vec<String> {
    use rand::SeedableRng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let products = build_catalogue(n.div_ceil(4).max(1), &mut rng);
    let mut titles = Vec::with_capacity(n);
    for p in &products {
        titles.push(p.title_taobao(&mut rng));
        titles.push(p.title_amazon(&mut rng));
        titles.push(p.title_jd(&mut rng));
        titles.push(p.title_own());
    }
    titles.truncate(n);
    titles
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ean13_check_digit_is_valid() {
        let code = ean13(1234567890);
        assert_eq!(code.len(), 13);
        let digits: Vec<u32> = code.chars().map(|c| c.to_digit(10).unwrap()).collect();
        let sum: u32 = digits
            .iter()
            .enumerate()
            .map(|(i, d)| d * if i % 2 == 0 { 1 } else { 3 })
            .sum();
        assert_eq!(sum % 10, 0);
    }

    #[test]
    fn catalogue_has_variants_and_is_deterministic() {
        let a = build_catalogue(300, &mut ChaCha8Rng::seed_from_u64(1));
        let b = build_catalogue(300, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(a.len(), 300);
        assert_eq!(
            a.iter().map(|p| &p.gtin).collect::<Vec<_>>(),
            b.iter().map(|p| &p.gtin).collect::<Vec<_>>()
        );
        let families: std::collections::HashSet<_> = a.iter().map(|p| &p.family_id).collect();
        assert!(
            families.len() < a.len(),
            "some families have several variants"
        );
        let cats: std::collections::HashSet<_> = a.iter().map(|p| p.category).collect();
        assert_eq!(cats.len(), CATEGORIES.len());
    }
}
