//! `[runtime] shared_threads`: every model of the process runs on one ONNX Runtime thread pool, so
//! loading more models adds no threads, and the models still give their golden-checked results.
//! Its own test binary: ONNX Runtime's environment (and so the pool) is made once per process.

mod common;

use std::path::PathBuf;

use common::*;
use edge_agent::config::RuntimeConfig;
use edge_agent::inference::{Model, ModelOutput};
use edge_agent::models::{ManifestSet, ModelStore};
use edge_agent::runtime::{self, SharedThreads};

/// Threads of this process now.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

#[test]
fn models_share_one_thread_pool() {
    let rt = RuntimeConfig {
        intra_threads: 3,
        ..RuntimeConfig::default()
    };
    assert!(rt.shared_threads, "shared_threads is the default");
    let shared = SharedThreads::of(&rt).expect("a shared pool");
    let before = threads();
    runtime::init_with(Some(&ort_lib()), Some(shared)).expect("ONNX Runtime");
    let with_pool = threads();
    // Three threads per operator: the calling thread and two of the pool's.
    assert!(
        with_pool >= before + 2,
        "the shared pool's threads start with the environment: {before} → {with_pool}"
    );

    let cache = std::env::var_os("EDGE_AGENT_MODEL_CACHE")
        .map(PathBuf::from)
        .expect("EDGE_AGENT_MODEL_CACHE must point at a cache filled by `edge-agent models fetch` (scripts/test.sh does both)");
    let set = ManifestSet::builtin().expect("manifests");
    let store = ModelStore::new(cache);
    let mut models: Vec<Model> = [
        "yolox_nano_coco_416",
        "vn_plate_det_yolo26n_640_e2e",
        "vn_plate_ocr_9x37_64x128",
    ]
    .iter()
    .map(|name| Model::load(set.require(name).expect(name), &store, &rt).expect(name))
    .collect();
    assert_eq!(
        threads(),
        with_pool,
        "sessions on the shared pool start no threads of their own (per-session pools would add 2 each)"
    );

    // The models run on the pool: the plate detector finds the plate of a real highway frame.
    let frame = edge_agent::imageio::read_rgb(&shared_dir().join("footage/images/vn_hwcam_01.jpg"))
        .expect("frame");
    match models[1].infer(&[(&frame, None)]).expect("plate detector") {
        ModelOutput::Detections(d) => {
            let best = d[0].iter().map(|det| det.score).fold(0f32, f32::max);
            // MODELS.md: this frame's plate at 0.824.
            assert!((best - 0.824).abs() < 0.01, "best plate score {best}");
        }
        other => panic!("not detections: {other:?}"),
    }
    assert_eq!(threads(), with_pool, "running adds no threads either");
}
