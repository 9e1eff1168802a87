use super::*;
use crate::inference::{Detection, Model, RgbImage};

#[test]
fn fitted_sizes_keep_the_letterbox_scale_and_round_up_to_32() {
    // A 1440×759 highway frame at 640: scale 0.444, 337.3 rows → 352.
    assert_eq!(fitted_size(1440, 759, 640, 640), Some((640, 352)));
    assert_eq!(fitted_size(1280, 720, 640, 640), Some((640, 384)));
    assert_eq!(fitted_size(1920, 1080, 416, 416), Some((416, 256)));
    // Portrait frames shrink the width.
    assert_eq!(fitted_size(960, 1236, 640, 640), Some((512, 640)));
    // Square or nearly square frames keep the fixed input.
    assert_eq!(fitted_size(578, 620, 640, 640), Some((608, 640)));
    assert_eq!(fitted_size(640, 640, 640, 640), None);
    assert_eq!(fitted_size(630, 640, 640, 640), None);
    assert_eq!(fitted_size(0, 10, 640, 640), None);
    // The fitted canvas scales the frame exactly as the fixed input does.
    for (w, h) in [
        (1440u32, 759u32),
        (1000, 679),
        (889, 563),
        (768, 576),
        (1, 640),
    ] {
        let (cw, ch) = fitted_size(w, h, 640, 640).unwrap_or((640, 640));
        let fixed = (640.0 / f64::from(w)).min(640.0 / f64::from(h));
        let fitted = (f64::from(cw) / f64::from(w)).min(f64::from(ch) / f64::from(h));
        assert_eq!(fitted, fixed, "{w}x{h} on {cw}x{ch}");
        assert!(cw % CANVAS_MULTIPLE == 0 && ch % CANVAS_MULTIPLE == 0);
    }
}

/// A `TensorProto` with int64 or float values, stored as ONNX exporters store them.
fn tensor(name: &str, dims: &[i64], f32s: &[f32], i64s: &[i64], raw: bool) -> Vec<u8> {
    let mut t = Vec::new();
    for &d in dims {
        put_varint_field(&mut t, 1, d as u64);
    }
    let float = !f32s.is_empty();
    put_varint_field(&mut t, 2, if float { FLOAT } else { INT64 });
    if raw {
        let bytes: Vec<u8> = if float {
            f32s.iter().flat_map(|v| v.to_le_bytes()).collect()
        } else {
            i64s.iter().flat_map(|v| v.to_le_bytes()).collect()
        };
        put_bytes_field(&mut t, 9, &bytes);
    } else if float {
        let bytes: Vec<u8> = f32s.iter().flat_map(|v| v.to_le_bytes()).collect();
        put_bytes_field(&mut t, 4, &bytes);
    } else {
        let mut packed = Vec::new();
        for &v in i64s {
            put_varint(&mut packed, v as u64);
        }
        put_bytes_field(&mut t, 7, &packed);
    }
    put_bytes_field(&mut t, 8, name.as_bytes());
    t
}

fn node(op: &str, inputs: &[&str], output: &str) -> Vec<u8> {
    let mut n = Vec::new();
    for i in inputs {
        put_bytes_field(&mut n, 1, i.as_bytes());
    }
    put_bytes_field(&mut n, 2, output.as_bytes());
    put_bytes_field(&mut n, 4, op.as_bytes());
    n
}

/// A model whose graph has what a YOLO26 export pins to a 64×64 input: the input shape, anchor
/// points and strides over levels 8, 16 and 32, and an attention block's reshapes at stride 32.
fn yolo_like_model() -> Vec<u8> {
    let levels = [8, 16, 32];
    let table = |content| anchor_table((64, 64), &levels, content);
    let (planar, pairs, strides) = (
        table(TableContent::PointsPlanar),
        table(TableContent::PointsPaired),
        table(TableContent::Strides),
    );
    let n = cell_count((64, 64), &levels) as i64;
    let mut graph = Vec::new();
    put_bytes_field(&mut graph, 1, &node("Reshape", &["qkv", "tokens"], "q"));
    put_bytes_field(&mut graph, 1, &node("Reshape", &["v", "map"], "m"));
    put_bytes_field(&mut graph, 1, &node("Reshape", &["h", "flat"], "f"));
    put_bytes_field(&mut graph, 2, b"g");
    put_bytes_field(
        &mut graph,
        5,
        &tensor("anchors", &[1, 2, n], &planar, &[], true),
    );
    put_bytes_field(&mut graph, 5, &tensor("pairs", &[n, 2], &pairs, &[], true));
    put_bytes_field(
        &mut graph,
        5,
        &tensor("strides", &[1, n], &strides, &[], false),
    );
    put_bytes_field(
        &mut graph,
        5,
        &tensor("tokens", &[4], &[], &[1, 1, 128, 4], true),
    );
    put_bytes_field(
        &mut graph,
        5,
        &tensor("map", &[4], &[], &[1, 64, 2, 2], false),
    );
    put_bytes_field(&mut graph, 5, &tensor("flat", &[3], &[], &[1, 4, -1], true));
    // Not a reshape target: a 2-element constant equal to the stride-32 map stays as it is.
    put_bytes_field(&mut graph, 5, &tensor("other", &[2], &[], &[2, 2], true));
    put_bytes_field(
        &mut graph,
        11,
        &value_info(
            "images",
            FLOAT,
            &[Dim::Value(1), Dim::Value(3), Dim::Value(64), Dim::Value(64)],
        ),
    );
    // Old IR versions list initializers among the inputs too.
    put_bytes_field(
        &mut graph,
        11,
        &value_info("tokens", INT64, &[Dim::Value(4)]),
    );
    put_bytes_field(
        &mut graph,
        12,
        &value_info(
            "out",
            FLOAT,
            &[Dim::Value(1), Dim::Value(300), Dim::Value(6)],
        ),
    );
    put_bytes_field(
        &mut graph,
        13,
        &value_info("q", FLOAT, &[Dim::Value(1), Dim::Value(4)]),
    );
    let mut model = Vec::new();
    put_varint_field(&mut model, 1, 9);
    put_bytes_field(&mut model, 7, &graph);
    put_bytes_field(&mut model, 8, b"opset");
    model
}

fn graph_of(model: &[u8]) -> Vec<Field<'_>> {
    let fields = parse(model).unwrap();
    let graph = fields.iter().find(|f| f.number == 7).unwrap();
    let Value::Bytes(g) = graph.value else {
        panic!("graph is a message")
    };
    parse(g).unwrap()
}

/// Each graph field `number` (inputs, outputs) as its name and declared dims (`None`: no shape;
/// a symbolic dim as its name).
fn declared(model: &[u8], number: u64) -> Vec<(String, Option<Vec<String>>)> {
    graph_of(model)
        .iter()
        .filter(|f| f.number == number)
        .map(|f| {
            let Value::Bytes(vi) = f.value else { panic!() };
            let name = string_field(&parse(vi).unwrap(), 1).unwrap().unwrap();
            let mut dims = None;
            edit_value_info_shape(vi, |d| {
                dims = d.map(|d| {
                    d.iter()
                        .map(|d| match dim_value(d) {
                            Some(v) => v.to_string(),
                            None => string_field(&parse(d).unwrap(), 2).unwrap().unwrap(),
                        })
                        .collect()
                });
                Ok(None)
            })
            .unwrap();
            (name, dims)
        })
        .collect()
}

fn initializer_names(model: &[u8]) -> Vec<String> {
    graph_of(model)
        .iter()
        .filter(|f| f.number == 5)
        .map(|f| match f.value {
            Value::Bytes(b) => Tensor::parse(b).unwrap().name,
            _ => panic!("initializer is a message"),
        })
        .collect()
}

fn feed<'a>(feeds: &'a [SizeFeed], name: &str) -> &'a SizeFeed {
    feeds.iter().find(|f| f.name == name).unwrap()
}

#[test]
fn copying_every_field_reproduces_the_model_byte_for_byte() {
    let model = yolo_like_model();
    assert_eq!(rebuild(&model, |_| Ok(Edit::Keep)).unwrap(), model);
}

#[test]
fn size_bound_constants_become_inputs_and_the_image_size_is_free() {
    let model = yolo_like_model();
    let dynamic = dynamic_model(&model, "images", (64, 64)).unwrap();
    let names: Vec<&str> = dynamic.feeds.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["anchors", "pairs", "strides", "tokens", "map"]);
    assert_eq!(initializer_names(&dynamic.bytes), ["flat", "other"]);
    let inputs = declared(&dynamic.bytes, 11);
    let dims = |name: &str| -> Vec<String> {
        let found: Vec<_> = inputs.iter().filter(|(n, _)| n == name).collect();
        assert_eq!(found.len(), 1, "{name} is declared once: {inputs:?}");
        found[0].1.clone().unwrap()
    };
    assert_eq!(dims("images"), ["1", "3", "height", "width"]);
    assert_eq!(dims("anchors"), ["1", "2", "anchors"]);
    assert_eq!(dims("pairs"), ["anchors", "2"]);
    assert_eq!(dims("tokens"), ["4"]);
    assert_eq!(
        declared(&dynamic.bytes, 12),
        [("out".to_string(), None)],
        "output shape cleared"
    );
    let graph = graph_of(&dynamic.bytes);
    assert!(
        graph.iter().all(|f| f.number != 13),
        "inferred shapes dropped"
    );
    assert!(graph.iter().any(|f| matches!(f.value, Value::Bytes(b"g"))));
    assert!(parse(&dynamic.bytes).unwrap().iter().any(|f| f.number == 8));
}

#[test]
fn feeds_at_the_fixed_size_are_the_original_constants() {
    let model = yolo_like_model();
    let dynamic = dynamic_model(&model, "images", (64, 64)).unwrap();
    let originals: Vec<Tensor> = graph_of(&model)
        .iter()
        .filter(|f| f.number == 5)
        .map(|f| match f.value {
            Value::Bytes(b) => Tensor::parse(b).unwrap(),
            _ => panic!(),
        })
        .collect();
    for f in &dynamic.feeds {
        let t = originals.iter().find(|t| t.name == f.name).unwrap();
        let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
        match (f.value(64, 64).unwrap(), &t.values) {
            (FeedValue::F32(d, v), TensorValues::F32(o)) => {
                assert_eq!((d, &v), (dims, o), "{}", f.name)
            }
            (FeedValue::I64(d, v), TensorValues::I64(o)) => {
                assert_eq!((d, &v), (dims, o), "{}", f.name)
            }
            _ => panic!("{}: type changed", f.name),
        }
    }
}

#[test]
fn feeds_follow_the_input_size() {
    let dynamic = dynamic_model(&yolo_like_model(), "images", (64, 64)).unwrap();
    // 32×64: 4×8 + 2×4 + 1×2 cells.
    let n = 32 + 8 + 2;
    let FeedValue::F32(dims, anchors) = feed(&dynamic.feeds, "anchors").value(32, 64).unwrap()
    else {
        panic!("float")
    };
    assert_eq!(dims, [1, 2, n]);
    assert_eq!(
        &anchors[..3],
        [0.5, 1.5, 2.5],
        "x of the first stride-8 row"
    );
    assert_eq!(anchors[8], 0.5, "the second row starts again at x 0.5");
    assert_eq!(anchors[n + 8], 1.5, "at y 1.5");
    assert_eq!(anchors[n - 1], 1.5, "the last stride-32 cell's x");
    let FeedValue::F32(dims, pairs) = feed(&dynamic.feeds, "pairs").value(32, 64).unwrap() else {
        panic!("float")
    };
    assert_eq!((dims, &pairs[16..18]), (vec![n, 2], &[0.5, 1.5][..]));
    let FeedValue::F32(_, strides) = feed(&dynamic.feeds, "strides").value(32, 64).unwrap() else {
        panic!("float")
    };
    assert_eq!(
        (strides[0], strides[31], strides[32], strides[41]),
        (8.0, 8.0, 16.0, 32.0)
    );
    let ints = |name: &str| match feed(&dynamic.feeds, name).value(32, 64).unwrap() {
        FeedValue::I64(_, v) => v,
        FeedValue::F32(..) => panic!("int64"),
    };
    assert_eq!(ints("tokens"), [1, 1, 128, 2]);
    assert_eq!(ints("map"), [1, 64, 1, 2]);
    // 48 rows do not divide into stride-32 cells.
    assert_eq!(
        feed(&dynamic.feeds, "map").value(48, 64),
        Err(FitError::Indivisible {
            h: 48,
            w: 64,
            stride: 32
        })
    );
}

#[test]
fn rewriting_refuses_what_it_cannot_do() {
    let model = yolo_like_model();
    assert_eq!(
        dynamic_model(&model, "pixels", (64, 64)).unwrap_err(),
        FitError::NoFixedInput("pixels".into())
    );
    assert_eq!(
        dynamic_model(&model, "images", (640, 640)).unwrap_err(),
        FitError::InputSize {
            found: (64, 64),
            expected: (640, 640)
        }
    );
    let mut truncated = model.clone();
    truncated.truncate(model.len() - 3);
    assert!(matches!(
        dynamic_model(&truncated, "images", (64, 64)),
        Err(FitError::Malformed(_))
    ));
    assert!(matches!(
        dynamic_model(&[0xff; 12], "images", (64, 64)),
        Err(FitError::Malformed(_))
    ));
}

/// A real detector on one ONNX Runtime thread, its input fitted to frames or not.
fn detector(name: &str, fit_canvas: bool) -> Model {
    let rt = crate::config::RuntimeConfig {
        intra_threads: 1,
        fit_canvas,
        ..Default::default()
    };
    crate::plate::fixtures::load_model(name, &rt)
}

/// Every detection one side scores at least `min_score` is on the other side too (same class, IoU
/// above 0.9, score within 0.1); detections near the threshold may fall either side of it.
fn same_detections(square: &[Detection], fitted: &[Detection], min_score: f32, what: &str) {
    for (from, to, side) in [(square, fitted, "fitted"), (fitted, square, "square")] {
        for s in from.iter().filter(|d| d.score >= min_score) {
            let f = to
                .iter()
                .find(|f| {
                    f.class_id == s.class_id
                        && crate::inference::decode::iou(&f.bbox, &s.bbox) > 0.9
                })
                .unwrap_or_else(|| panic!("{what}: {s:?} not found on the {side} input: {to:?}"));
            assert!(
                (f.score - s.score).abs() < 0.1,
                "{what}: score {} vs {}",
                f.score,
                s.score
            );
        }
    }
}

#[test]
fn fitted_detectors_find_what_the_square_input_finds_on_real_frames() {
    let dir = crate::plate::fixtures::shared_dir().join("footage/images");
    for (name, min_score) in [
        ("vn_plate_det_yolo26n_640_e2e", 0.5),
        ("yolox_nano_coco_416", 0.5),
    ] {
        let mut square = detector(name, false);
        let mut fitted = detector(name, true);
        for file in [
            "vn_hwcam_03.jpg",
            "vn_hwcam_05.jpg",
            "vn_cars_collage_01.jpg",
            "vn_street_01.jpg",
        ] {
            let img: RgbImage = crate::imageio::read_rgb(&dir.join(file)).expect("footage image");
            let a = square.detect(&img, None).unwrap();
            // The size-free session on the square input is the original model.
            let same = fitted.detect(&img, None).unwrap();
            assert_eq!(a.len(), same.len(), "{name} on {file}");
            for (x, y) in a.iter().zip(&same) {
                assert!(
                    (x.score - y.score).abs() < 1e-4,
                    "{name} on {file}: {x:?} vs {y:?}"
                );
                assert!(
                    x.bbox
                        .iter()
                        .zip(&y.bbox)
                        .all(|(p, q)| (p - q).abs() < 1e-2)
                );
            }
            let b = fitted.detect_fitted(&img, None).unwrap();
            same_detections(&a, &b, min_score, &format!("{name} on {file}"));
        }
        let canvases = fitted.fitted_canvases().to_vec();
        assert!(
            canvases.contains(&(640, 352)) || canvases.contains(&(416, 224)),
            "{name}: the 1440×759 frames ran on a fitted canvas: {canvases:?}"
        );
        assert!(
            square.fitted_canvases().is_empty(),
            "fit_canvas = false keeps the square input"
        );
        // A square frame needs no canvas of its own.
        let sq = RgbImage::from_pixel(500, 500, image::Rgb([90, 90, 90]));
        let before = fitted.fitted_canvases().len();
        fitted.detect_fitted(&sq, None).unwrap();
        assert_eq!(fitted.fitted_canvases().len(), before);
    }
}
