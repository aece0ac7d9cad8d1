//! One BERT encoder layer that can be trained.
//!
//! Written here rather than taken from candle-transformers: candle's BERT normalises with
//! `candle_nn::ops::layer_norm`, a fused kernel registered without a backward pass, so
//! gradients stop silently at the first layer norm they meet and fine-tuning trains nothing but
//! the head. This layer is the same arithmetic (Hugging Face's `BertLayer`: self-attention,
//! residual + layer norm, GELU feed-forward, residual + layer norm) with the layer norm spelled
//! out in differentiable operations, and reads the same weight names, so a pretrained layer
//! loads into it unchanged. A test holds its output equal to candle's layer.

use candle_core::{Result, Tensor, D};
use candle_nn::{Linear, Module, VarBuilder};

/// A layer norm's scale and shift.
struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl Norm {
    fn load(vb: VarBuilder, size: usize, eps: f64) -> Result<Self> {
        Ok(Norm {
            weight: vb.get(size, "weight")?,
            bias: vb.get(size, "bias")?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
        centred
            .broadcast_div(&(variance + self.eps)?.sqrt()?)?
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

/// A BERT layer over `(batch, tokens, hidden)` states, weights under the usual names
/// (`attention.self.query`, …, `output.LayerNorm`).
pub struct TrainableBertLayer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_output: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    output: Linear,
    output_norm: Norm,
    heads: usize,
}

impl TrainableBertLayer {
    pub fn load(
        vb: VarBuilder,
        hidden: usize,
        intermediate: usize,
        heads: usize,
        eps: f64,
    ) -> Result<Self> {
        let linear = |i, o, path: &str| candle_nn::linear(i, o, vb.pp(path));
        Ok(TrainableBertLayer {
            query: linear(hidden, hidden, "attention.self.query")?,
            key: linear(hidden, hidden, "attention.self.key")?,
            value: linear(hidden, hidden, "attention.self.value")?,
            attention_output: linear(hidden, hidden, "attention.output.dense")?,
            attention_norm: Norm::load(vb.pp("attention.output.LayerNorm"), hidden, eps)?,
            intermediate: linear(hidden, intermediate, "intermediate.dense")?,
            output: linear(intermediate, hidden, "output.dense")?,
            output_norm: Norm::load(vb.pp("output.LayerNorm"), hidden, eps)?,
            heads,
        })
    }

    /// `additive_mask` is `(batch, 1, 1, tokens)`: 0 on tokens, a very negative number on
    /// padding.
    pub fn forward(&self, x: &Tensor, additive_mask: &Tensor) -> Result<Tensor> {
        let (batch, tokens, hidden) = x.dims3()?;
        let head_size = hidden / self.heads;
        let split = |t: Tensor| -> Result<Tensor> {
            t.reshape((batch, tokens, self.heads, head_size))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(self.query.forward(x)?)?;
        let k = split(self.key.forward(x)?)?;
        let v = split(self.value.forward(x)?)?;
        let scores = (q.matmul(&k.t()?)? / (head_size as f64).sqrt())?;
        let probabilities =
            candle_nn::ops::softmax(&scores.broadcast_add(additive_mask)?, D::Minus1)?;
        let context = probabilities
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((batch, tokens, hidden))?;
        let attended = self
            .attention_norm
            .forward(&(self.attention_output.forward(&context)? + x)?)?;
        let expanded = self.intermediate.forward(&attended)?.gelu_erf()?;
        self.output_norm
            .forward(&(self.output.forward(&expanded)? + attended)?)
    }
}
