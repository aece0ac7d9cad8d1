use shopfuse_core::table::TableDef;
use shopfuse_core::{Encoder, EntityKind, Progress, Project, Transaction};
use shopfuse_resolve::catalogue::offers;
use shopfuse_sentiment::tables::{review_aspects, review_sentiment, sentiment_alerts};

use crate::{PipelineError, Stage, StageContext, StageSummary};

/// Clean reviews and the offers that map listings to golden products → the review
/// classifier trained for the project (public sets and the project's stars), each review's
/// polarity, each clause's aspects, and alerts where a product's negative share jumps.
pub struct SentimentStage;

impl Stage for SentimentStage {
    fn name(&self) -> &'static str {
        "sentiment"
    }
    fn about(&self) -> &'static str {
        "review polarity (NB-SVM over n-grams stacked with a head on the encoder), aspects per clause, per-product alerts, rating–text mismatch"
    }
    fn reads(&self) -> Vec<String> {
        vec![EntityKind::Reviews.clean_table(), offers::NAME.to_string()]
    }
    fn writes(&self) -> Vec<TableDef> {
        vec![
            review_sentiment::TABLE,
            review_aspects::TABLE,
            sentiment_alerts::TABLE,
        ]
    }
    /// The settings, the encoder, the model's version and the content of every public
    /// training file (a changed file retrains the model).
    fn settings(&self, project: &Project) -> serde_json::Value {
        let config = &project.config.sentiment;
        let files = shopfuse_sentiment::tables::training_fingerprints(config, &project.root);
        serde_json::json!({
            "sentiment": config,
            "encoder": config.encoder_head.then_some(shopfuse_embed::usem3::MODEL_ID),
            "model_version": shopfuse_sentiment::model::MODEL_VERSION,
            "training_files": files,
        })
    }
    fn run(
        &self,
        ctx: &StageContext<'_>,
        tx: &mut Transaction<'_>,
        _: &dyn Progress,
    ) -> Result<StageSummary, PipelineError> {
        let config = &ctx.project.config.sentiment;
        let encoder: Option<&dyn Encoder> = if config.encoder_head {
            Some(ctx.encoder()?)
        } else {
            None
        };
        let summary = shopfuse_sentiment::run_sentiment(tx, config, &ctx.project.root, encoder)?;
        Ok(StageSummary::Sentiment(summary))
    }
}
