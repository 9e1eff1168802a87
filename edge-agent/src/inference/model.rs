//! A loaded model: manifest + session + preprocessor + decoder, with per-stage timings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ort::session::{Session, SessionInputValue};
use ort::value::TensorRef;

use super::decode::{
    self, CtcRead, DbnetParams, EndToEndParams, SlotRead, UltralyticsParams, YoloxParams,
};
use super::preprocess::{Preprocessor, TensorData};
use super::session::create_session_from_memory;
use super::{Detection, InferenceError, Rect, RgbImage, create_session, fit};
use crate::models::{DecoderSpec, Layout, ModelManifest, ModelStore, ResizeMode};
use crate::runtime::config::{ExecutionProviderKind, InferenceBackend, RuntimeConfig};

/// Time spent in each stage of the last call.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    pub preprocess: Duration,
    pub run: Duration,
    pub postprocess: Duration,
}

/// Decoded outputs, one entry per input image.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelOutput {
    Detections(Vec<Vec<Detection>>),
    Slots(Vec<SlotRead>),
    Ctc(Vec<CtcRead>),
    TextBoxes(Vec<Vec<[f32; 4]>>),
}

/// The engine behind a model: ONNX Runtime, or tract where no ONNX Runtime build exists.
enum Engine {
    Ort(Session),
    #[cfg(feature = "tract")]
    Tract(super::tract::TractModel),
}

/// How a size-free detector ([`fit::dynamic_model`]) is run: the preprocessor for fitted canvases
/// and the values of its size feeds.
struct Fitting {
    /// Letterboxes onto the canvas of each call (its size set per call).
    pre: Preprocessor,
    feeds: FeedCache,
    /// Canvas sizes used so far, `(width, height)`.
    used: Vec<(u32, u32)>,
}

/// Named values for a size-free model's feeds.
type FeedValues = Vec<(String, fit::FeedValue)>;

/// The size feeds of a size-free model and their values for the last input size.
struct FeedCache {
    feeds: Vec<fit::SizeFeed>,
    last: Option<((u32, u32), FeedValues)>,
}

impl FeedCache {
    /// The feeds' values for an `h × w` input.
    fn values(
        &mut self,
        h: usize,
        w: usize,
    ) -> Result<&[(String, fit::FeedValue)], InferenceError> {
        let size = (h as u32, w as u32);
        if self.last.as_ref().is_none_or(|(s, _)| *s != size) {
            let values = self
                .feeds
                .iter()
                .map(|f| Ok((f.name.clone(), f.value(size.0, size.1)?)))
                .collect::<Result<Vec<_>, fit::FitError>>()
                .map_err(|e| InferenceError::Spec(format!("input {}x{}: {e}", size.1, size.0)))?;
            self.last = Some((size, values));
        }
        Ok(self.last.as_ref().map_or(&[], |(_, v)| v.as_slice()))
    }
}

/// A session of `manifest`'s model rewritten to take any input size ([`fit::dynamic_model`]),
/// checked on a canvas half the fixed input's height.
fn load_size_free(
    path: &std::path::Path,
    manifest: &ModelManifest,
    rt: &RuntimeConfig,
) -> Result<(Engine, Fitting), InferenceError> {
    let input = &manifest.input;
    let (fw, fh) = (input.width.unwrap_or(0), input.height.unwrap_or(0));
    let bytes = std::fs::read(path).map_err(|e| InferenceError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let dynamic =
        fit::dynamic_model(&bytes, &input.name, (fh, fw)).map_err(|e| InferenceError::Session {
            model: path.to_path_buf(),
            message: format!("making its input size free: {e}"),
        })?;
    drop(bytes);
    let mut session = Engine::Ort(create_session_from_memory(path, &dynamic.bytes, rt)?);
    let mut fitting = Fitting {
        pre: Preprocessor::new(input)?,
        feeds: FeedCache {
            feeds: dynamic.feeds,
            last: None,
        },
        used: Vec::new(),
    };
    // A graph with a size-bound constant the rewrite did not recognise fails here, not later.
    let check = (
        fw,
        (fh / 2).div_ceil(fit::CANVAS_MULTIPLE) * fit::CANVAS_MULTIPLE,
    );
    fitting.pre.set_input_size(check.0, check.1)?;
    let pad = input.pad_value.clamp(0.0, 255.0) as u8;
    let blank = RgbImage::from_pixel(check.0, check.1, image::Rgb([pad; 3]));
    let batch = fitting.pre.prepare(&[(&blank, None)])?;
    let feeds = fitting.feeds.values(batch.shape[2], batch.shape[3])?;
    run_session(
        &mut session,
        manifest,
        &batch.shape,
        &batch.data,
        feeds,
        |_, _| Ok(()),
    )?;
    Ok((session, fitting))
}

/// One model ready to run. Not `Sync`: each inference worker owns its own.
pub struct Model {
    manifest: ModelManifest,
    session: Engine,
    pre: Preprocessor,
    /// `Some` when [`RuntimeConfig::fit_canvas`] is on and `session` runs the size-free rewrite.
    fitting: Option<Fitting>,
    labels: Vec<Arc<str>>,
    dictionary: Vec<String>,
    alphabet: Vec<char>,
    provider: ExecutionProviderKind,
    last: StageTimes,
    total: StageTimes,
}

fn read_lines(
    store: &ModelStore,
    manifest: &ModelManifest,
    file: &str,
) -> Result<Vec<String>, InferenceError> {
    let expected = manifest
        .files
        .iter()
        .find(|f| f.file == file)
        .map(|f| f.sha256.as_str())
        .unwrap_or_default();
    let status = store
        .check_file(file, expected)
        .map_err(|e| InferenceError::File {
            path: store.path_of(file),
            message: e.to_string(),
        })?;
    if status.state != crate::models::FileState::Ok {
        return Err(InferenceError::File {
            path: status.path.clone(),
            message: status.to_string(),
        });
    }
    let text = std::fs::read_to_string(&status.path).map_err(|e| InferenceError::File {
        path: status.path.clone(),
        message: e.to_string(),
    })?;
    Ok(text.lines().map(str::to_string).collect())
}

/// Runs `engine` on one input tensor (and the size feeds of a size-free model) and hands the named
/// f32 output to `decode`.
fn run_session<R>(
    engine: &mut Engine,
    manifest: &ModelManifest,
    shape: &[usize],
    data: &TensorData,
    feeds: &[(String, fit::FeedValue)],
    decode: impl FnOnce(&[usize], &[f32]) -> Result<R, InferenceError>,
) -> Result<R, InferenceError> {
    // Without the tract feature the match has one arm; with it, two.
    #[allow(clippy::infallible_destructuring_match)]
    let session = match engine {
        Engine::Ort(session) => session,
        #[cfg(feature = "tract")]
        Engine::Tract(model) => {
            let (dims, values) = model.run(&manifest.name, shape, data)?;
            return decode(&dims, &values);
        }
    };
    let run_err = |e: ort::Error| InferenceError::Run {
        model: manifest.name.clone(),
        message: e.to_string(),
    };
    let input = manifest.input.name.as_str();
    let shape = shape.to_vec();
    let mut inputs: Vec<(&str, SessionInputValue<'_>)> = vec![(
        input,
        match data {
            TensorData::F32(v) => TensorRef::from_array_view((shape, v.as_slice()))
                .map_err(run_err)?
                .into(),
            TensorData::U8(v) => TensorRef::from_array_view((shape, v.as_slice()))
                .map_err(run_err)?
                .into(),
        },
    )];
    for (name, value) in feeds {
        let value: SessionInputValue<'_> = match value {
            fit::FeedValue::F32(dims, v) => {
                TensorRef::from_array_view((dims.clone(), v.as_slice()))
                    .map_err(run_err)?
                    .into()
            }
            fit::FeedValue::I64(dims, v) => {
                TensorRef::from_array_view((dims.clone(), v.as_slice()))
                    .map_err(run_err)?
                    .into()
            }
        };
        inputs.push((name.as_str(), value));
    }
    let outputs = session.run(inputs).map_err(run_err)?;
    let out_name = manifest.output.name.as_str();
    let value = outputs.get(out_name).ok_or_else(|| {
        InferenceError::Output(format!(
            "model `{}` has no output `{out_name}`",
            manifest.name
        ))
    })?;
    let (out_shape, values) = value.try_extract_tensor::<f32>().map_err(run_err)?;
    let dims: Vec<usize> = out_shape.iter().map(|&d| d.max(0) as usize).collect();
    decode(&dims, values)
}

impl Model {
    /// Verifies the weights in `store`, creates the session and loads labels or dictionaries.
    pub fn load(
        manifest: &ModelManifest,
        store: &ModelStore,
        rt: &RuntimeConfig,
    ) -> Result<Self, InferenceError> {
        let path = store
            .verified_path(manifest)
            .map_err(|e| InferenceError::File {
                path: store.path_of(&manifest.file),
                message: e.to_string(),
            })?;
        let input = &manifest.input;
        // CPU only: TensorRT builds an engine per input shape, and neither GPU provider could be
        // checked with a size-free graph here.
        let fittable = rt.fit_canvas
            && rt.backend == InferenceBackend::Onnxruntime
            && rt.execution_provider == ExecutionProviderKind::Cpu
            && input.layout == Layout::Nchw
            && input.width.is_some()
            && input.height.is_some()
            && matches!(
                input.resize,
                ResizeMode::LetterboxCenter | ResizeMode::LetterboxTopLeft
            )
            && matches!(
                manifest.decoder,
                DecoderSpec::Yolox { .. }
                    | DecoderSpec::YoloEnd2end { .. }
                    | DecoderSpec::Ultralytics { .. }
            );
        let size_free = if fittable {
            load_size_free(&path, manifest, rt)
                .inspect_err(|e| {
                    tracing::warn!(model = %manifest.name, error = %e, "cannot run this detector on fitted canvases; it keeps its fixed input");
                })
                .ok()
        } else {
            None
        };
        let (session, fitting) = match (size_free, rt.backend) {
            (Some((session, fitting)), _) => (session, Some(fitting)),
            (None, InferenceBackend::Onnxruntime) => {
                (Engine::Ort(create_session(&path, rt)?), None)
            }
            #[cfg(feature = "tract")]
            (None, InferenceBackend::Tract) => (
                Engine::Tract(super::tract::TractModel::load(
                    &path,
                    &manifest.output.name,
                )?),
                None,
            ),
            #[cfg(not(feature = "tract"))]
            (None, InferenceBackend::Tract) => return Err(InferenceError::NoTract),
        };
        let labels: Vec<Arc<str>> = match &manifest.labels_file {
            Some(f) => read_lines(store, manifest, f)?
                .into_iter()
                .filter(|l| !l.is_empty())
                .map(Arc::from)
                .collect(),
            None => manifest
                .labels
                .iter()
                .map(|l| Arc::from(l.as_str()))
                .collect(),
        };
        let dictionary = match &manifest.decoder {
            DecoderSpec::CtcOcr { dictionary } => read_lines(store, manifest, dictionary)?,
            _ => Vec::new(),
        };
        let alphabet = match &manifest.decoder {
            DecoderSpec::SlotOcr { alphabet, .. } => alphabet.chars().collect(),
            _ => Vec::new(),
        };
        Ok(Self {
            manifest: manifest.clone(),
            pre: Preprocessor::new(&manifest.input)?,
            fitting,
            session,
            labels,
            dictionary,
            alphabet,
            provider: rt.execution_provider,
            last: StageTimes::default(),
            total: StageTimes::default(),
        })
    }

    /// The engine running this model (`onnxruntime` or `tract`).
    pub fn backend(&self) -> InferenceBackend {
        match self.session {
            Engine::Ort(_) => InferenceBackend::Onnxruntime,
            #[cfg(feature = "tract")]
            Engine::Tract(_) => InferenceBackend::Tract,
        }
    }

    /// The execution provider this model's session runs on. Registration failures are errors, so
    /// this is the provider that is actually active, never a silent fallback.
    pub fn provider(&self) -> ExecutionProviderKind {
        self.provider
    }

    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// Class name of a detection (`class_N` when the manifest has no label for it).
    pub fn label(&self, class_id: usize) -> Arc<str> {
        self.labels
            .get(class_id)
            .cloned()
            .unwrap_or_else(|| Arc::from(format!("class_{class_id}")))
    }

    /// Timings of the last [`Model::infer`] call.
    pub fn last_times(&self) -> StageTimes {
        self.last
    }

    /// Timings summed over every [`Model::infer`] call since the last [`Model::reset_totals`].
    pub fn total_times(&self) -> StageTimes {
        self.total
    }

    /// `fixed_height` models: pad rows to a multiple of `multiple` and at least `min` pixels
    /// instead of the manifest's `min_width` (see `Preprocessor::set_fixed_height_width`).
    pub fn set_fixed_height_width(
        &mut self,
        min: u32,
        multiple: u32,
    ) -> Result<(), InferenceError> {
        self.pre.set_fixed_height_width(min, multiple)
    }

    pub fn reset_totals(&mut self) {
        self.total = StageTimes::default();
    }

    /// Runs the model on image regions (`None` = whole image) and decodes per the manifest.
    pub fn infer(
        &mut self,
        items: &[(&RgbImage, Option<Rect>)],
    ) -> Result<ModelOutput, InferenceError> {
        self.infer_on(None, items)
    }

    /// `infer` on a fitted canvas of `canvas` (width, height) or, for `None`, on the fixed input.
    fn infer_on(
        &mut self,
        canvas: Option<(u32, u32)>,
        items: &[(&RgbImage, Option<Rect>)],
    ) -> Result<ModelOutput, InferenceError> {
        let t0 = Instant::now();
        let Self {
            session,
            pre,
            fitting,
            manifest,
            alphabet,
            dictionary,
            labels,
            ..
        } = self;
        let (pre, feeds) = match (fitting.as_mut(), canvas) {
            (Some(f), Some((w, h))) => {
                f.pre.set_input_size(w, h)?;
                (&mut f.pre, Some(&mut f.feeds))
            }
            (f, _) => (pre, f.map(|f| &mut f.feeds)),
        };
        let batch = pre.prepare(items)?;
        let feeds = match feeds {
            Some(cache) => cache.values(batch.shape[2], batch.shape[3])?,
            None => &[],
        };
        let t1 = Instant::now();
        let name = &manifest.name;
        let labels = labels.len();
        let mut t2 = t1;
        let output = run_session(
            session,
            manifest,
            &batch.shape,
            &batch.data,
            feeds,
            |dims, data| {
                t2 = Instant::now();
                let n = items.len();
                let per_item = data.len() / n.max(1);
                let geoms = &batch.geometries;
                Ok(match &manifest.decoder {
                    DecoderSpec::Yolox {
                        strides,
                        score_threshold,
                        nms_iou,
                        class_agnostic_nms,
                    } => {
                        let p = YoloxParams {
                            strides,
                            input_w: batch.shape[3] as u32,
                            input_h: batch.shape[2] as u32,
                            num_classes: dims.last().copied().unwrap_or(0).saturating_sub(5),
                            score_threshold: *score_threshold,
                            nms_iou: *nms_iou,
                            class_agnostic: *class_agnostic_nms,
                        };
                        if p.num_classes != labels && labels > 0 {
                            return Err(InferenceError::Output(format!(
                                "model `{name}` has {} classes but {labels} labels",
                                p.num_classes
                            )));
                        }
                        let per = data
                            .chunks(per_item)
                            .zip(geoms)
                            .map(|(o, g)| decode::decode_yolox(o, &p, g));
                        ModelOutput::Detections(per.collect::<Result<_, _>>()?)
                    }
                    DecoderSpec::YoloEnd2end {
                        score_threshold,
                        nms_iou,
                    } => {
                        let p = EndToEndParams {
                            rows: per_item / 6,
                            score_threshold: *score_threshold,
                            nms_iou: *nms_iou,
                        };
                        let per = data
                            .chunks(per_item)
                            .zip(geoms)
                            .map(|(o, g)| decode::decode_end2end(o, &p, g));
                        ModelOutput::Detections(per.collect::<Result<_, _>>()?)
                    }
                    DecoderSpec::Ultralytics {
                        score_threshold,
                        nms_iou,
                        class_agnostic_nms,
                    } => {
                        let channels = dims.get(1).copied().unwrap_or(0);
                        let p = UltralyticsParams {
                            num_classes: channels.saturating_sub(4),
                            anchors: dims.get(2).copied().unwrap_or(0),
                            score_threshold: *score_threshold,
                            nms_iou: *nms_iou,
                            class_agnostic: *class_agnostic_nms,
                        };
                        let per = data
                            .chunks(per_item)
                            .zip(geoms)
                            .map(|(o, g)| decode::decode_ultralytics(o, &p, g));
                        ModelOutput::Detections(per.collect::<Result<_, _>>()?)
                    }
                    DecoderSpec::SlotOcr {
                        slots, pad_char, ..
                    } => ModelOutput::Slots(decode::decode_slots(
                        data, n, *slots, alphabet, *pad_char,
                    )?),
                    DecoderSpec::CtcOcr { .. } => {
                        let steps = dims.get(1).copied().unwrap_or(0);
                        ModelOutput::Ctc(decode::decode_ctc(data, n, steps, dictionary)?)
                    }
                    DecoderSpec::Dbnet {
                        threshold,
                        box_threshold,
                        unclip_ratio,
                        min_area,
                    } => {
                        let p = DbnetParams {
                            threshold: *threshold,
                            box_threshold: *box_threshold,
                            unclip_ratio: *unclip_ratio,
                            min_area: *min_area,
                        };
                        let (h, w) = (
                            dims.get(2).copied().unwrap_or(0),
                            dims.get(3).copied().unwrap_or(0),
                        );
                        let per = data
                            .chunks(per_item)
                            .zip(geoms)
                            .map(|(o, g)| decode::decode_dbnet(o, w, h, &p, g));
                        ModelOutput::TextBoxes(per.collect::<Result<_, _>>()?)
                    }
                })
            },
        )?;
        let last = StageTimes {
            preprocess: t1 - t0,
            run: t2 - t1,
            postprocess: t2.elapsed(),
        };
        self.last = last;
        self.total.preprocess += last.preprocess;
        self.total.run += last.run;
        self.total.postprocess += last.postprocess;
        Ok(output)
    }

    /// Runs the model on image regions and returns the raw output (shape and values) instead of
    /// the manifest's decode: for callers that decode themselves (the plate reader folds the CTC
    /// OCR's full per-step distributions into plate lattices). Timings are recorded as by `infer`.
    pub fn infer_raw(
        &mut self,
        items: &[(&RgbImage, Option<Rect>)],
    ) -> Result<(Vec<usize>, Vec<f32>), InferenceError> {
        let t0 = Instant::now();
        let batch = self.pre.prepare(items)?;
        let t1 = Instant::now();
        let feeds = match self.fitting.as_mut() {
            Some(f) => f.feeds.values(batch.shape[2], batch.shape[3])?,
            None => &[],
        };
        let out = run_session(
            &mut self.session,
            &self.manifest,
            &batch.shape,
            &batch.data,
            feeds,
            |dims, values| Ok((dims.to_vec(), values.to_vec())),
        )?;
        let last = StageTimes {
            preprocess: t1 - t0,
            run: t1.elapsed(),
            postprocess: std::time::Duration::ZERO,
        };
        self.last = last;
        self.total.preprocess += last.preprocess;
        self.total.run += last.run;
        Ok(out)
    }

    /// The dictionary of a CTC OCR model (empty for other models).
    pub fn dictionary(&self) -> &[String] {
        &self.dictionary
    }

    /// Detections for one image region (detector models only), on the detector's fixed input.
    pub fn detect(
        &mut self,
        img: &RgbImage,
        region: Option<Rect>,
    ) -> Result<Vec<Detection>, InferenceError> {
        self.detect_on(None, img, region)
    }

    /// [`Model::detect`] on the smallest canvas that holds the region at the fixed input's
    /// letterbox scale ([`fit`]) when [`RuntimeConfig::fit_canvas`] is on: for whole camera frames,
    /// whose shape repeats. A 16:9 frame then costs the detector about 55 % of a square input.
    pub fn detect_fitted(
        &mut self,
        img: &RgbImage,
        region: Option<Rect>,
    ) -> Result<Vec<Detection>, InferenceError> {
        let r = region.unwrap_or(Rect::whole(img));
        let input = &self.manifest.input;
        let canvas = match (&mut self.fitting, input.width, input.height) {
            (Some(f), Some(fw), Some(fh)) => {
                let size = fit::fitted_size(r.w, r.h, fw, fh);
                if let Some(size) = size
                    && !f.used.contains(&size)
                {
                    f.used.push(size);
                }
                size
            }
            _ => None,
        };
        match canvas {
            Some(_) => self.detect_on(canvas, img, region).or_else(|e| {
                // An extreme aspect (a canvas with fewer anchors than the head keeps) must not
                // lose the frame: the fixed input still reads it.
                tracing::debug!(model = %self.manifest.name, error = %e, "fitted canvas failed; using the fixed input");
                self.detect_on(None, img, region)
            }),
            None => self.detect_on(None, img, region),
        }
    }

    /// The fitted canvases used so far, `(width, height)` each.
    pub fn fitted_canvases(&self) -> &[(u32, u32)] {
        self.fitting.as_ref().map_or(&[], |f| f.used.as_slice())
    }

    fn detect_on(
        &mut self,
        canvas: Option<(u32, u32)>,
        img: &RgbImage,
        region: Option<Rect>,
    ) -> Result<Vec<Detection>, InferenceError> {
        match self.infer_on(canvas, &[(img, region)])? {
            ModelOutput::Detections(mut d) => Ok(d.pop().unwrap_or_default()),
            _ => Err(InferenceError::WrongKind {
                model: self.manifest.name.clone(),
                kind: self.manifest.decoder.kind(),
                wanted: "detection",
            }),
        }
    }

    /// Runs a raw tensor through the model and returns the output's shape and values; for wiring
    /// checks against reference fingerprints.
    pub fn run_raw(
        &mut self,
        shape: &[usize],
        data: &TensorData,
    ) -> Result<(Vec<usize>, Vec<f32>), InferenceError> {
        let feeds = match (self.fitting.as_mut(), shape) {
            (Some(f), [_, _, h, w]) => f.feeds.values(*h, *w)?,
            _ => &[],
        };
        run_session(
            &mut self.session,
            &self.manifest,
            shape,
            data,
            feeds,
            |dims, values| Ok((dims.to_vec(), values.to_vec())),
        )
    }
}
