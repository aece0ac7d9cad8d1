use shopfuse_sentiment::corpus::{LabelledText, PublicCorpus};
use shopfuse_sentiment::model::{ModelSettings, Polarity, SentimentModel, TrainingText};

fn conv(v: &[LabelledText]) -> Vec<TrainingText> {
    v.iter().map(|t| TrainingText { text: t.text.clone(), label: if t.positive { Polarity::Positive } else { Polarity::Negative } }).collect()
}

fn main() {
    let c = PublicCorpus::read(std::path::Path::new("../shared/data/chnsenticorp")).unwrap();
    let enc = shopfuse_embed::usem3::UseM3::open(std::path::Path::new("models/usem3")).unwrap();
    let (train, dev) = (conv(&c.train), conv(&c.dev));
    for head_l2 in [Some(1e-5), Some(1e-4), Some(1e-3)] {
        let t = std::time::Instant::now();
        let s = ModelSettings { head_l2, ..Default::default() };
        let m = SentimentModel::train(&train, Some(&dev), Some(&enc), &s).unwrap();
        println!("{head_l2:?} {:?} ({:.1}s)", m.manifest, t.elapsed().as_secs_f64());
    }
}
