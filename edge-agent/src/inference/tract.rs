//! Pure-Rust inference with tract, for devices that have no ONNX Runtime build (armv7 cameras: PyPI
//! ships no armv7 wheel). Behind the `tract` cargo feature because it adds minutes to the build.
//!
//! tract optimises a model for fixed input shapes, so one plan is kept per input shape seen (a
//! detector sees one shape; an OCR model one per batch size).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::InferenceError;
use super::preprocess::TensorData;

/// An ONNX model loaded by tract, its output selected by name, with a plan per input shape.
pub(super) struct TractModel {
    path: PathBuf,
    model: InferenceModel,
    plans: Vec<(Vec<usize>, Arc<TypedRunnableModel>)>,
}

impl TractModel {
    /// Parses the model and keeps only `output` (an ONNX tensor name) as its output.
    pub(super) fn load(path: &Path, output: &str) -> Result<Self, InferenceError> {
        let err = |stage: &str, e: TractError| InferenceError::Session {
            model: path.to_path_buf(),
            message: format!("tract, {stage}: {e:#}"),
        };
        // Shapes recorded in the file (value_info, output shapes) can carry symbols from the
        // exporter's batch dimension that tract cannot unify once the input is pinned (the slot
        // OCR's Reshape to [9, 64] fails that way); tract infers every shape itself instead.
        let mut model = tract_onnx::onnx()
            .with_ignore_value_info(true)
            .with_ignore_output_shapes(true)
            .model_for_path(path)
            .map_err(|e| err("loading the model", e))?;
        model
            .select_outputs_by_name([output])
            .map_err(|e| err(&format!("selecting output `{output}`"), e))?;
        Ok(Self {
            path: path.to_path_buf(),
            model,
            plans: Vec::new(),
        })
    }

    fn plan(
        &mut self,
        shape: &[usize],
        dt: DatumType,
    ) -> Result<Arc<TypedRunnableModel>, InferenceError> {
        if let Some((_, p)) = self.plans.iter().find(|(s, _)| s == shape) {
            return Ok(p.clone());
        }
        let plan = self
            .model
            .clone()
            .with_input_fact(0, InferenceFact::dt_shape(dt, shape))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| InferenceError::Session {
                model: self.path.clone(),
                message: format!("tract, optimising for input {shape:?}: {e:#}"),
            })?;
        tracing::debug!(model = %self.path.display(), ?shape, "tract plan built");
        self.plans.push((shape.to_vec(), plan.clone()));
        Ok(plan)
    }

    /// Runs one input tensor; returns the selected output's shape and values as f32.
    pub(super) fn run(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &TensorData,
    ) -> Result<(Vec<usize>, Vec<f32>), InferenceError> {
        let run_err = |e: TractError| InferenceError::Run {
            model: name.to_string(),
            message: format!("tract: {e:#}"),
        };
        let (tensor, dt) = match data {
            TensorData::F32(v) => (Tensor::from_shape(shape, v), f32::datum_type()),
            TensorData::U8(v) => (Tensor::from_shape(shape, v), u8::datum_type()),
        };
        let tensor = tensor.map_err(run_err)?;
        let plan = self.plan(shape, dt)?;
        let outputs = plan.run(tvec!(tensor.into())).map_err(run_err)?;
        let out = outputs.first().ok_or_else(|| {
            InferenceError::Output(format!("model `{name}`: tract returned no output"))
        })?;
        let out = out.cast_to::<f32>().map_err(run_err)?;
        let view = out.to_plain_array_view::<f32>().map_err(run_err)?;
        Ok((view.shape().to_vec(), view.iter().copied().collect()))
    }
}
