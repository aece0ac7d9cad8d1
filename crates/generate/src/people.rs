//! Shoppers and their platform accounts. Some people reuse one phone or e-mail everywhere
//! (easy to link once hashed); others are recognisable only by a similar name and address.

use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub const PLATFORMS: [&str; 4] = ["taobao", "jd", "amazon", "own_shop"];

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "罗", "高", "欧阳", "司马",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
    "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "晓东", "子涵", "梓萱", "浩然", "雨桐",
    "一诺", "欣怡",
];

/// (province, city, districts, IP prefix) — the IP prefix lets fraud detection see a city
/// mismatch between a shopper's address and where an order came from.
pub const CITIES: &[(&str, &str, &[&str], &str)] = &[
    (
        "北京市",
        "北京",
        &["朝阳区", "海淀区", "东城区", "丰台区"],
        "111.193",
    ),
    (
        "上海市",
        "上海",
        &["浦东新区", "徐汇区", "静安区", "闵行区"],
        "116.228",
    ),
    ("广东省", "广州", &["天河区", "越秀区", "海珠区"], "113.108"),
    ("广东省", "深圳", &["南山区", "福田区", "宝安区"], "119.123"),
    ("浙江省", "杭州", &["西湖区", "余杭区", "滨江区"], "115.236"),
    ("四川省", "成都", &["武侯区", "锦江区", "高新区"], "118.112"),
    ("湖北省", "武汉", &["洪山区", "江汉区", "武昌区"], "59.172"),
    ("江苏省", "南京", &["鼓楼区", "玄武区", "江宁区"], "58.213"),
];
const STREETS: &[&str] = &[
    "建国路",
    "中山路",
    "人民路",
    "解放大道",
    "长安街",
    "学院路",
    "科技园路",
    "滨江路",
    "和平街",
    "花园路",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Accounts share a phone and/or e-mail.
    SharedKey,
    /// Accounts share only a similar name and address.
    Fuzzy,
    /// One account only.
    Single,
}

impl Overlap {
    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::SharedKey => "shared_key",
            Overlap::Fuzzy => "fuzzy",
            Overlap::Single => "single",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Person {
    pub person_id: String,
    pub name: String,
    pub phone: String,
    pub email: String,
    pub city: usize,
    pub address: String,
    pub overlap: Overlap,
    /// Weight over catalogue categories: what this person tends to look at and buy.
    pub category_taste: Vec<f64>,
    /// Relative shopping frequency.
    pub activity: f64,
    pub devices: Vec<String>,
    pub accounts: Vec<Account>,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub platform: &'static str,
    pub account_id: String,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: String,
    pub registered_at: i64,
}

fn phone(rng: &mut ChaCha8Rng) -> String {
    let prefix = [
        "138", "139", "150", "151", "186", "187", "135", "177", "199",
    ]
    .choose(rng)
    .expect("prefix");
    format!("{prefix}{:08}", rng.random_range(0..100_000_000u32))
}

/// The ways one number is written in different forms.
fn phone_variant(phone: &str, rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..4) {
        0 => phone.to_string(),
        1 => format!("+86 {}-{}-{}", &phone[..3], &phone[3..7], &phone[7..]),
        2 => format!("0086{phone}"),
        _ => format!("{} {} {}", &phone[..3], &phone[3..7], &phone[7..]),
    }
}

fn email(rng: &mut ChaCha8Rng, n: usize) -> String {
    let user: String = (0..rng.random_range(5..9))
        .map(|_| (b'a' + rng.random_range(0..26)) as char)
        .collect();
    let domain = [
        "qq.com",
        "163.com",
        "126.com",
        "gmail.com",
        "outlook.com",
        "sina.com",
    ]
    .choose(rng)
    .expect("domain");
    format!("{user}{n}@{domain}")
}

/// An address written as another platform's form would hold it: province dropped, building
/// detail added, "号" spelled differently.
fn address_variant(person_address: &str, rng: &mut ChaCha8Rng) -> String {
    let mut a = person_address.to_string();
    if rng.random_bool(0.5) {
        for p in [
            "北京市",
            "上海市",
            "广东省",
            "浙江省",
            "四川省",
            "湖北省",
            "江苏省",
        ] {
            a = a.replacen(p, "", 1);
        }
    }
    if rng.random_bool(0.4) {
        a.push_str(&format!(
            "{}栋{}室",
            rng.random_range(1..20),
            rng.random_range(101..2505)
        ));
    }
    if rng.random_bool(0.3) {
        a = a.replace('号', "號");
    }
    a
}

fn name_variant(name: &str, rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..4) {
        0 => {
            let mut chars = name.chars();
            let first = chars.next().map(String::from).unwrap_or_default();
            format!("{first} {}", chars.collect::<String>())
        }
        1 => format!("{name}（收）"),
        _ => name.to_string(),
    }
}

fn account_id(platform: &str, serial: usize, rng: &mut ChaCha8Rng) -> String {
    match platform {
        "taobao" => format!(
            "tb{}_{serial}",
            ["小", "爱购", "momo", "happy", "jj"]
                .choose(rng)
                .expect("nick")
        ),
        "jd" => format!("jd_{:x}{serial}", rng.random_range(0x1000..0xffffu32)),
        "amazon" => {
            let s: String = (0..12)
                .map(|_| b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"[rng.random_range(0..34)] as char)
                .collect();
            format!("A{s}{serial}")
        }
        _ => format!("C{serial:07}"),
    }
}

pub fn build_people(
    n: usize,
    n_categories: usize,
    start: i64,
    rng: &mut ChaCha8Rng,
) -> Vec<Person> {
    let mut serial = 0usize;
    (0..n)
        .map(|i| {
            let name = format!(
                "{}{}",
                SURNAMES.choose(rng).expect("surname"),
                GIVEN.choose(rng).expect("given")
            );
            let city = rng.random_range(0..CITIES.len());
            let address = home_address(city, rng);
            let taste = category_taste(n_categories, rng);
            let platforms = platforms_used(rng);
            let overlap = if platforms.len() == 1 {
                Overlap::Single
            } else if rng.random_bool(0.6) {
                Overlap::SharedKey
            } else {
                Overlap::Fuzzy
            };
            let phone_main = phone(rng);
            let email_main = email(rng, i);
            let person = Person {
                person_id: format!("U{:06}", i + 1),
                name,
                phone: phone_main,
                email: email_main,
                city,
                address,
                overlap,
                category_taste: taste,
                activity: 0.0,
                devices: Vec::new(),
                accounts: Vec::new(),
            };
            let accounts = platforms
                .iter()
                .map(|&platform| {
                    serial += 1;
                    platform_account(&person, platform, serial, start, rng)
                })
                .collect();
            let devices = (0..rng.random_range(1..=2))
                .map(|_| format!("dev-{:08x}", rng.random::<u32>()))
                .collect();
            Person {
                activity: rng.random_range(0.2f64..1.0).powi(3) * 4.0 + 0.1,
                devices,
                accounts,
                ..person
            }
        })
        .collect()
}

/// Province, city (unless the province is a city itself), district, street and house number.
fn home_address(city: usize, rng: &mut ChaCha8Rng) -> String {
    let (province, city_name, districts, _) = CITIES[city];
    format!(
        "{province}{}{}{}{}号",
        if province.ends_with('市') {
            String::new()
        } else {
            format!("{city_name}市")
        },
        districts.choose(rng).expect("district"),
        STREETS.choose(rng).expect("street"),
        rng.random_range(1..300)
    )
}

/// Tastes: one or two favourite categories carry most of the weight.
fn category_taste(n_categories: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let mut taste: Vec<f64> = (0..n_categories)
        .map(|_| rng.random_range(0.02..0.15))
        .collect();
    for _ in 0..rng.random_range(1..=2) {
        taste[rng.random_range(0..n_categories)] += rng.random_range(1.0..3.0);
    }
    let total: f64 = taste.iter().sum();
    taste.iter_mut().for_each(|t| *t /= total);
    taste
}

/// The platforms a person holds accounts on (at least one).
fn platforms_used(rng: &mut ChaCha8Rng) -> Vec<&'static str> {
    let mut platforms: Vec<&'static str> = Vec::new();
    for (p, share) in PLATFORMS.iter().zip([0.75, 0.55, 0.35, 0.3]) {
        if rng.random_bool(share) {
            platforms.push(p);
        }
    }
    if platforms.is_empty() {
        platforms.push(PLATFORMS[rng.random_range(0..PLATFORMS.len())]);
    }
    platforms
}

/// One account of `person` on `platform`: the same phone (maybe reformatted) and mailbox
/// when the person's accounts share keys, a different number and mailbox when they are fuzzy.
fn platform_account(
    person: &Person,
    platform: &'static str,
    serial: usize,
    start: i64,
    rng: &mut ChaCha8Rng,
) -> Account {
    let (phone_acc, email_acc) = match person.overlap {
        Overlap::SharedKey | Overlap::Single => {
            let shared_phone = rng.random_bool(0.8);
            (
                Some(phone_variant(&person.phone, rng)),
                if shared_phone && rng.random_bool(0.5) {
                    None
                } else {
                    Some(person.email.to_uppercase_some(rng))
                },
            )
        }
        // Different number (work phone, old SIM) or none; a different mailbox.
        Overlap::Fuzzy => (
            rng.random_bool(0.6).then(|| phone(rng)),
            rng.random_bool(0.5).then(|| email(rng, 100_000 + serial)),
        ),
    };
    Account {
        platform,
        account_id: account_id(platform, serial, rng),
        name: name_variant(&person.name, rng),
        phone: phone_acc,
        email: email_acc,
        address: address_variant(&person.address, rng),
        registered_at: start - rng.random_range(30..1500) * 86_400_000_000,
    }
}

/// Keys that several people hold, which identity resolution must not chain through: a
/// family phone that one relative's account also lists, and parcel-station addresses that
/// neighbours in one district all ship to.
pub fn share_household_keys(people: &mut [Person], rng: &mut ChaCha8Rng) {
    let n = people.len();
    if n < 2 {
        return;
    }
    for _ in 0..n / 40 {
        let (a, b) = (rng.random_range(0..n), rng.random_range(0..n));
        if a == b {
            continue;
        }
        let family_phone = phone_variant(&people[a].phone.clone(), rng);
        let accounts = &mut people[b].accounts;
        let k = rng.random_range(0..accounts.len());
        accounts[k].phone = Some(family_phone);
    }
    for station in 0..(n / 400).max(1) {
        let city = rng.random_range(0..CITIES.len());
        let (province, city_name, districts, _) = CITIES[city];
        let city_part = if province.ends_with('市') {
            String::new()
        } else {
            format!("{city_name}市")
        };
        let address = format!(
            "{province}{city_part}{}{}{}号菜鸟驿站",
            districts.choose(rng).expect("district"),
            STREETS.choose(rng).expect("street"),
            100 + station
        );
        for _ in 0..rng.random_range(8..16) {
            let person = &mut people[rng.random_range(0..n)];
            let k = rng.random_range(0..person.accounts.len());
            person.accounts[k].address = address.clone();
        }
    }
}

trait CaseVariant {
    fn to_uppercase_some(&self, rng: &mut ChaCha8Rng) -> String;
}

impl CaseVariant for String {
    /// Platforms keep e-mails as typed: sometimes capitalised.
    fn to_uppercase_some(&self, rng: &mut ChaCha8Rng) -> String {
        if rng.random_bool(0.2) {
            let mut c = self.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        } else {
            self.clone()
        }
    }
}
