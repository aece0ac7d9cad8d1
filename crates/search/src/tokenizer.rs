//! [`ProductTokenizer`]: how a product title or a query becomes index terms.
//!
//! Written by hand because no tokenizer crate does the three things a mixed Chinese/English
//! catalogue needs at once: Chinese runs are cut into words by jieba (search mode, so "降噪耳机"
//! is found by "耳机" too); Latin words are lower-cased and stemmed ("headphones" =
//! "headphone"); and model codes ("WH-1000XM5", "SM-S921", "A2101") stay whole, with their
//! hyphen-free spelling and their digit-bearing parts at the same position, so "wh1000xm5"
//! and "1000xm5" find them. Capacities are written one way whatever the shop wrote: "256G",
//! "256 GB" and "２５６ＧＢ" are all the term `256gb`, and "1TB" is `1024gb`, the canonical form
//! of the golden record's capacity field.

use std::cell::RefCell;
use std::sync::LazyLock;

use jieba_rs::Jieba;
use tantivy::tokenizer::{RawTokenizer, Stemmer, TextAnalyzer, Token, TokenStream as _, Tokenizer};
use unicode_normalization::UnicodeNormalization;

/// The name the index registers the tokenizer under.
pub const TOKENIZER_NAME: &str = "shopfuse_product";

/// jieba's dictionary takes a fraction of a second to load: once per process.
static JIEBA: LazyLock<Jieba> = LazyLock::new(Jieba::new);

thread_local! {
    static STEMMER: RefCell<TextAnalyzer> = RefCell::new(
        TextAnalyzer::builder(RawTokenizer::default())
            .filter(Stemmer::default())
            .build(),
    );
}

/// One term of a text, with its word position (parts of a model code share its position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub text: String,
    pub position: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Han,
    Latin,
    Other,
}

fn script(c: char) -> Script {
    if c.is_ascii_alphanumeric() {
        Script::Latin
    } else if is_han(c) {
        Script::Han
    } else {
        Script::Other
    }
}

pub(crate) fn is_han(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2EBEF)
}

/// The text in the form every comparison uses: NFKC (full-width letters and digits become
/// ASCII) and lower case.
pub fn fold(text: &str) -> String {
    text.nfkc().collect::<String>().to_lowercase()
}

/// Runs of one script; a hyphen, dot or slash between two Latin characters stays inside the
/// run ("wh-1000xm5", "2.0"), anywhere else it separates.
fn runs(text: &str) -> Vec<(Script, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<(Script, String)> = Vec::new();
    for (i, &c) in chars.iter().enumerate() {
        let mut s = script(c);
        if matches!(c, '-' | '.')
            && i > 0
            && i + 1 < chars.len()
            && script(chars[i - 1]) == Script::Latin
            && script(chars[i + 1]) == Script::Latin
        {
            s = Script::Latin;
        }
        match out.last_mut() {
            Some((last, run)) if *last == s && s != Script::Other => run.push(c),
            _ if s == Script::Other => out.push((s, String::new())),
            _ => out.push((s, c.to_string())),
        }
    }
    out.retain(|(s, _)| *s != Script::Other);
    out
}

/// `256g`, `256gb`, `1t`, `1tb` as the canonical capacity term (`256gb`, `1024gb`).
pub fn capacity_term(word: &str) -> Option<String> {
    let digits = word.find(|c: char| !c.is_ascii_digit())?;
    if digits == 0 {
        return None;
    }
    let value: u64 = word[..digits].parse().ok()?;
    match &word[digits..] {
        // A bare "5G" is the network ("5G手机"), not 5 gigabytes: no phone or card stores
        // less than 8 GB, and 8G/12G are memory sizes that are capacities too.
        "g" if value < 8 => None,
        "g" | "gb" => Some(format!("{value}gb")),
        "t" | "tb" => Some(format!("{}gb", value * 1024)),
        _ => None,
    }
}

fn stem(word: &str) -> String {
    STEMMER.with(|analyzer| {
        let mut analyzer = analyzer.borrow_mut();
        let mut stream = analyzer.token_stream(word);
        let mut out = word.to_string();
        if let Some(token) = stream.next() {
            out = token.text.clone();
        }
        out
    })
}

/// The terms of a Latin run: a capacity, a plain word (stemmed), or a model code with its
/// joined spelling and digit-bearing parts.
fn latin_terms(run: &str, position: usize, out: &mut Vec<Term>) {
    let term = |text: String| Term { text, position };
    if let Some(capacity) = capacity_term(run) {
        out.push(term(capacity));
        return;
    }
    let has_digit = run.chars().any(|c| c.is_ascii_digit());
    let has_alpha = run.chars().any(|c| c.is_ascii_alphabetic());
    if !has_digit && !run.contains(['-', '.']) {
        out.push(term(stem(run)));
        return;
    }
    out.push(term(run.to_string()));
    if !(run.contains('-') || has_alpha && has_digit) {
        return;
    }
    let joined: String = run.chars().filter(|c| *c != '-' && *c != '.').collect();
    if joined != run {
        out.push(term(joined));
    }
    let parts: Vec<&str> = run.split(['-', '.']).filter(|p| !p.is_empty()).collect();
    if parts.len() > 1 {
        for part in parts {
            if part.len() >= 2 && part.chars().any(|c| c.is_ascii_digit()) {
                out.push(term(part.to_string()));
            }
        }
    }
}

/// Every term of `text`, in order.
pub fn terms(text: &str) -> Vec<Term> {
    let folded = fold(text);
    let mut out = Vec::new();
    let mut position = 0;
    let runs = runs(&folded);
    let mut i = 0;
    while i < runs.len() {
        let (script, run) = &runs[i];
        match script {
            Script::Han => {
                for word in JIEBA.cut_for_search(run, true) {
                    if word.word.chars().any(is_han) {
                        out.push(Term {
                            text: word.word.to_string(),
                            position,
                        });
                        position += 1;
                    }
                }
            }
            Script::Latin => {
                // "256 GB": a number followed by a unit word is one capacity.
                if let Some((_, unit)) = runs.get(i + 1) {
                    let merged = format!("{run}{unit}");
                    if run.chars().all(|c| c.is_ascii_digit()) && capacity_term(&merged).is_some() {
                        latin_terms(&merged, position, &mut out);
                        position += 1;
                        i += 2;
                        continue;
                    }
                }
                latin_terms(run, position, &mut out);
                position += 1;
            }
            Script::Other => {}
        }
        i += 1;
    }
    out
}

/// The distinct term texts of `text`.
pub fn term_set(text: &str) -> std::collections::HashSet<String> {
    terms(text).into_iter().map(|t| t.text).collect()
}

/// The tantivy side of [`terms`].
#[derive(Clone, Default)]
pub struct ProductTokenizer {
    tokens: Vec<Token>,
}

/// The tokens of one text, handed out one at a time.
pub struct ProductTokenStream<'a> {
    tokens: &'a [Token],
    next: usize,
}

impl Tokenizer for ProductTokenizer {
    type TokenStream<'a> = ProductTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> ProductTokenStream<'a> {
        self.tokens.clear();
        for term in terms(text) {
            self.tokens.push(Token {
                // Offsets are not used (no highlighting); positions are.
                offset_from: 0,
                offset_to: 0,
                position: term.position,
                text: term.text,
                position_length: 1,
            });
        }
        ProductTokenStream {
            tokens: &self.tokens,
            next: 0,
        }
    }
}

impl tantivy::tokenizer::TokenStream for ProductTokenStream<'_> {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        unreachable!("the index never rewrites a product token in place")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        terms(s).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn chinese_is_segmented_and_latin_stemmed() {
        let t = texts("【官方正品】华为 Mate 50 紫色 降噪耳机 Headphones");
        for want in ["华为", "mate", "50", "紫色", "耳机", "headphon"] {
            assert!(t.contains(&want.to_string()), "{want} in {t:?}");
        }
    }

    #[test]
    fn model_codes_stay_whole_with_their_parts() {
        let t = texts("Sony WH-1000XM5 (SM-S921)");
        for want in [
            "wh-1000xm5",
            "wh1000xm5",
            "1000xm5",
            "sm-s921",
            "sms921",
            "s921",
        ] {
            assert!(t.contains(&want.to_string()), "{want} in {t:?}");
        }
    }

    #[test]
    fn capacities_have_one_spelling() {
        assert_eq!(texts("256G"), ["256gb"]);
        assert_eq!(texts("256 GB"), ["256gb"]);
        assert_eq!(texts("２５６ＧＢ"), ["256gb"]);
        assert_eq!(texts("1TB"), ["1024gb"]);
        assert_eq!(texts("5G手机"), ["5g", "手机"]);
    }

    #[test]
    fn model_code_parts_share_the_position() {
        let t = terms("sony wh-1000xm5 black");
        let code: Vec<usize> = t
            .iter()
            .filter(|t| t.text.contains("1000"))
            .map(|t| t.position)
            .collect();
        assert!(code.iter().all(|&p| p == 1), "{t:?}");
        assert_eq!(t.last().unwrap().position, 2);
    }

    proptest::proptest! {
        #[test]
        fn any_text_tokenises_without_panicking(s in "\\PC{0,40}") {
            let _ = terms(&s);
        }
    }
}
