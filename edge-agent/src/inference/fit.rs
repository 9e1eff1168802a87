//! Fitted canvases: a fixed-input detector run at the smallest input that holds a frame at the
//! detector's own letterbox scale.
//!
//! A 16:9 camera frame letterboxed into a square 640×640 input is 47 % padding, and the detector
//! spends as long on the padding as on the road. The detectors we run are convolutional: what pins
//! them to their exported size is the declared input shape, the shape constants of the attention
//! block (its token count), and the anchor-point and stride tables of end-to-end heads.
//! [`dynamic_model`] rewrites the ONNX protobuf so that the input's height and width are free and
//! each of those constants becomes a graph input ([`SizeFeed`]) whose value is computed for the
//! size of each call. One session then serves the square input (with the constants' own values, so
//! its outputs are the original model's) and every fitted canvas: a 1440×759 frame runs at 640×352
//! with the same scale (0.444) as at 640×640.
//!
//! The rewrite works on the protobuf wire format directly (the few ONNX message types it touches
//! are read field by field; everything else is copied byte for byte), so no schema crate is needed.
//! A graph with a size-bound constant it does not recognise fails the check run the caller makes on
//! a non-square canvas (shapes no longer agree), never silently.

/// Fitted canvases are multiples of this: the coarsest stride of the detectors we run.
pub const CANVAS_MULTIPLE: u32 = 32;

/// Strides whose anchor grids and shape constants are recognised.
const STRIDES: [u32; 4] = [8, 16, 32, 64];

/// Symbolic dimension names the rewritten graph uses.
const HEIGHT: &str = "height";
const WIDTH: &str = "width";
const ANCHORS: &str = "anchors";

/// Why a model could not be made size-free.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FitError {
    #[error("malformed ONNX protobuf: {0}")]
    Malformed(&'static str),
    #[error("the model has no graph input `{0}` with a fixed N×C×H×W shape")]
    NoFixedInput(String),
    #[error("the input is {found:?}, the manifest says {expected:?} (height, width)")]
    InputSize {
        found: (u32, u32),
        expected: (u32, u32),
    },
    #[error("the model keeps its weights in external data; it cannot be rewritten in memory")]
    ExternalData,
    #[error("a {h}×{w} input does not divide by stride {stride}, which the graph uses")]
    Indivisible { h: u32, w: u32, stride: u32 },
}

/// The canvas `(width, height)` that holds a `w × h` image at the letterbox scale of a fixed
/// `fw × fh` input (`r = min(fw / w, fh / h)`), each side rounded up to [`CANVAS_MULTIPLE`];
/// `None` when that is the fixed input itself.
pub fn fitted_size(w: u32, h: u32, fw: u32, fh: u32) -> Option<(u32, u32)> {
    if w == 0 || h == 0 || fw == 0 || fh == 0 {
        return None;
    }
    let r = (f64::from(fw) / f64::from(w)).min(f64::from(fh) / f64::from(h));
    // The exact product, rounded up: the fitted input's own `min(cw / w, ch / h)` is then `r` again.
    let side = |v: u32, full: u32| {
        let exact = (f64::from(v) * r - 1e-9).ceil().max(1.0) as u32;
        exact
            .div_ceil(CANVAS_MULTIPLE)
            .saturating_mul(CANVAS_MULTIPLE)
            .min(full)
    };
    let size = (side(w, fw), side(h, fh));
    (size != (fw, fh)).then_some(size)
}

/// A model rewritten by [`dynamic_model`]: its bytes, and the inputs that replaced its size-bound
/// constants.
#[derive(Debug, Clone)]
pub struct DynamicModel {
    pub bytes: Vec<u8>,
    pub feeds: Vec<SizeFeed>,
}

/// A graph input that replaced a size-bound constant; [`SizeFeed::value`] gives it for an input
/// size.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeFeed {
    pub name: String,
    kind: FeedKind,
}

#[derive(Debug, Clone, PartialEq)]
enum FeedKind {
    /// A per-anchor table over the cells of `levels`. `dims` is the constant's shape; its entries
    /// equal to the old anchor count `count` become the new count.
    AnchorTable {
        levels: Vec<u32>,
        content: TableContent,
        dims: Vec<i64>,
        count: i64,
    },
    /// A reshape target ending in a stride-`stride` feature map's `(h, w)`.
    MapShape { values: Vec<i64>, stride: u32 },
    /// A reshape target ending in a stride-`stride` feature map's cell count.
    CellCount { values: Vec<i64>, stride: u32 },
}

/// What a per-anchor table holds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TableContent {
    /// Cell centres: an x row, then a y row.
    PointsPlanar,
    /// Cell centres as (x, y) pairs.
    PointsPaired,
    /// Each cell's stride.
    Strides,
}

/// A feed's value: its shape and elements.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedValue {
    F32(Vec<usize>, Vec<f32>),
    I64(Vec<usize>, Vec<i64>),
}

impl SizeFeed {
    /// The constant's value for an `h × w` input.
    pub fn value(&self, h: u32, w: u32) -> Result<FeedValue, FitError> {
        let check = |stride: u32| {
            if divides((h, w), stride) {
                Ok(())
            } else {
                Err(FitError::Indivisible { h, w, stride })
            }
        };
        let shape = |dims: &[i64], count: i64, n: usize| -> Vec<usize> {
            dims.iter()
                .map(|&d| if d == count { n } else { d.max(0) as usize })
                .collect()
        };
        Ok(match &self.kind {
            FeedKind::AnchorTable {
                levels,
                content,
                dims,
                count,
            } => {
                levels.iter().try_for_each(|&s| check(s))?;
                FeedValue::F32(
                    shape(dims, *count, cell_count((h, w), levels)),
                    anchor_table((h, w), levels, *content),
                )
            }
            FeedKind::MapShape { values, stride } => {
                check(*stride)?;
                let mut v = values.clone();
                let end = v.len();
                v[end - 2] = i64::from(h / stride);
                v[end - 1] = i64::from(w / stride);
                FeedValue::I64(vec![v.len()], v)
            }
            FeedKind::CellCount { values, stride } => {
                check(*stride)?;
                let mut v = values.clone();
                let end = v.len();
                v[end - 1] = i64::from(h / stride) * i64::from(w / stride);
                FeedValue::I64(vec![v.len()], v)
            }
        })
    }
}

/// Whether an `h × w` input divides into `stride`-pixel cells.
fn divides((h, w): (u32, u32), stride: u32) -> bool {
    h.is_multiple_of(stride) && w.is_multiple_of(stride)
}

/// Cells over the levels `strides` of an `h × w` input.
fn cell_count(size: (u32, u32), strides: &[u32]) -> usize {
    strides
        .iter()
        .map(|s| (size.0 / s * (size.1 / s)) as usize)
        .sum()
}

/// A per-anchor table over the levels `strides` of an `h × w` input: cell centres
/// `(x + 0.5, y + 0.5)` or each cell's stride, row-major within a level (the order Ultralytics'
/// heads concatenate them).
fn anchor_table(size: (u32, u32), strides: &[u32], content: TableContent) -> Vec<f32> {
    let mut points: Vec<[f32; 2]> = Vec::new();
    let mut per = Vec::new();
    for &s in strides {
        for y in 0..size.0 / s {
            for x in 0..size.1 / s {
                points.push([x as f32 + 0.5, y as f32 + 0.5]);
                per.push(s as f32);
            }
        }
    }
    match content {
        TableContent::PointsPlanar => points
            .iter()
            .map(|p| p[0])
            .chain(points.iter().map(|p| p[1]))
            .collect(),
        TableContent::PointsPaired => points.iter().flatten().copied().collect(),
        TableContent::Strides => per,
    }
}

/// Rewrites an ONNX model whose `input` is a fixed `N×C×size.0×size.1` (height, width) tensor so
/// that its height and width are free: the anchor-point and stride tables and the reshape
/// constants that carry feature-map sizes become graph inputs ([`SizeFeed`]). Intermediate shape
/// annotations are dropped (ONNX Runtime infers them again) and the outputs' declared shapes are
/// cleared.
pub fn dynamic_model(
    model: &[u8],
    input: &str,
    size: (u32, u32),
) -> Result<DynamicModel, FitError> {
    let mut feeds = Vec::new();
    let mut graphs = 0;
    let bytes = rebuild(model, |f| match f {
        Field {
            number: 7,
            value: Value::Bytes(graph),
        } => {
            graphs += 1;
            let (g, found) = dynamic_graph(graph, input, size)?;
            feeds = found;
            Ok(Edit::Replace(g))
        }
        _ => Ok(Edit::Keep),
    })?;
    if graphs != 1 {
        return Err(FitError::Malformed("a model has exactly one graph"));
    }
    Ok(DynamicModel { bytes, feeds })
}

fn dynamic_graph(
    graph: &[u8],
    input: &str,
    size: (u32, u32),
) -> Result<(Vec<u8>, Vec<SizeFeed>), FitError> {
    let fields = parse(graph)?;
    let mut reshape_shapes: Vec<String> = Vec::new();
    for f in &fields {
        if let (1, Value::Bytes(node)) = (f.number, &f.value) {
            let node = parse(node)?;
            if string_field(&node, 4)?.as_deref() == Some("Reshape")
                && let Some(shape) = strings(&node, 1)?.into_iter().nth(1)
            {
                reshape_shapes.push(shape);
            }
        }
    }
    let mut feeds: Vec<(SizeFeed, u64)> = Vec::new();
    for f in &fields {
        if let (5, Value::Bytes(t)) = (f.number, &f.value) {
            let t = Tensor::parse(t)?;
            if let Some(kind) = classify(&t, &reshape_shapes, size) {
                feeds.push((
                    SizeFeed {
                        name: t.name.clone(),
                        kind,
                    },
                    t.data_type,
                ));
            }
        }
    }
    let is_feed = |name: &str| feeds.iter().any(|(f, _)| f.name == name);
    let mut found_input = false;
    let mut out = rebuild(graph, |f| {
        let Value::Bytes(bytes) = f.value else {
            return Ok(Edit::Keep);
        };
        match f.number {
            // initializer: the size-bound ones become inputs
            5 => Ok(if is_feed(&Tensor::parse(bytes)?.name) {
                Edit::Drop
            } else {
                Edit::Keep
            }),
            // input: the image gets free height and width; old-IR inputs that mirror an
            // initializer turned feed are added again below
            11 => {
                let name = string_field(&parse(bytes)?, 1)?.unwrap_or_default();
                if name == input {
                    found_input = true;
                    free_image_input(bytes, input, size).map(Edit::Replace)
                } else if is_feed(&name) {
                    Ok(Edit::Drop)
                } else {
                    Ok(Edit::Keep)
                }
            }
            // output: its shape may depend on the input size
            12 => edit_value_info_shape(bytes, |_| Ok(None)).map(Edit::Replace),
            // value_info: shapes inferred for the fixed size
            13 => Ok(Edit::Drop),
            _ => Ok(Edit::Keep),
        }
    })?;
    if !found_input {
        return Err(FitError::NoFixedInput(input.to_string()));
    }
    for (feed, data_type) in &feeds {
        let dims: Vec<Dim> = match &feed.kind {
            FeedKind::AnchorTable { dims, count, .. } => dims
                .iter()
                .map(|&d| {
                    if d == *count {
                        Dim::Param(ANCHORS)
                    } else {
                        Dim::Value(d.max(0) as u64)
                    }
                })
                .collect(),
            FeedKind::MapShape { values, .. } | FeedKind::CellCount { values, .. } => {
                vec![Dim::Value(values.len() as u64)]
            }
        };
        put_bytes_field(&mut out, 11, &value_info(&feed.name, *data_type, &dims));
    }
    Ok((out, feeds.into_iter().map(|(f, _)| f).collect()))
}

/// One dimension of a declared shape.
enum Dim {
    Value(u64),
    Param(&'static str),
}

/// An encoded `TensorShapeProto`.
fn shape_proto(dims: &[Dim]) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in dims {
        let mut dim = Vec::new();
        match d {
            Dim::Value(v) => put_varint_field(&mut dim, 1, *v),
            Dim::Param(p) => put_bytes_field(&mut dim, 2, p.as_bytes()),
        }
        put_bytes_field(&mut shape, 1, &dim);
    }
    shape
}

/// An encoded `ValueInfoProto` for a tensor.
fn value_info(name: &str, elem_type: u64, dims: &[Dim]) -> Vec<u8> {
    let mut tensor = Vec::new();
    put_varint_field(&mut tensor, 1, elem_type);
    put_bytes_field(&mut tensor, 2, &shape_proto(dims));
    let mut ty = Vec::new();
    put_bytes_field(&mut ty, 1, &tensor);
    let mut vi = Vec::new();
    put_bytes_field(&mut vi, 1, name.as_bytes());
    put_bytes_field(&mut vi, 2, &ty);
    vi
}

/// The image input with its fixed H and W made free.
fn free_image_input(value_info: &[u8], input: &str, size: (u32, u32)) -> Result<Vec<u8>, FitError> {
    let no_input = || FitError::NoFixedInput(input.to_string());
    edit_value_info_shape(value_info, |dims| {
        let dims = dims.ok_or_else(no_input)?;
        let fixed: Vec<u64> = dims
            .iter()
            .map(|d| dim_value(d).ok_or_else(no_input))
            .collect::<Result<_, _>>()?;
        let [n, c, h, w] = fixed[..] else {
            return Err(no_input());
        };
        if (h, w) != (u64::from(size.0), u64::from(size.1)) {
            return Err(FitError::InputSize {
                found: (h as u32, w as u32),
                expected: size,
            });
        }
        let shape = shape_proto(&[
            Dim::Value(n),
            Dim::Value(c),
            Dim::Param(HEIGHT),
            Dim::Param(WIDTH),
        ]);
        Ok(Some(shape))
    })
}

/// A `Dimension`'s `dim_value`, if it is a fixed size.
fn dim_value(dim: &[u8]) -> Option<u64> {
    parse(dim).ok()?.iter().find_map(|f| match f {
        Field {
            number: 1,
            value: Value::Varint(v),
        } => Some(*v),
        _ => None,
    })
}

/// Rebuilds a `ValueInfoProto` with its tensor type's shape replaced by what `edit` returns (the
/// encoded `TensorShapeProto`, or `None` to drop the shape). `edit` gets the current dimensions.
fn edit_value_info_shape(
    value_info: &[u8],
    mut edit: impl FnMut(Option<Vec<&[u8]>>) -> Result<Option<Vec<u8>>, FitError>,
) -> Result<Vec<u8>, FitError> {
    rebuild(value_info, |f| match f {
        // type: TypeProto
        Field {
            number: 2,
            value: Value::Bytes(ty),
        } => rebuild(ty, |f| match f {
            // tensor_type: TypeProto.Tensor
            Field {
                number: 1,
                value: Value::Bytes(tensor),
            } => {
                let fields = parse(tensor)?;
                let dims = match fields.iter().find(|f| f.number == 2) {
                    Some(Field {
                        value: Value::Bytes(shape),
                        ..
                    }) => Some(
                        parse(shape)?
                            .into_iter()
                            .filter_map(|d| match d {
                                Field {
                                    number: 1,
                                    value: Value::Bytes(b),
                                } => Some(b),
                                _ => None,
                            })
                            .collect(),
                    ),
                    _ => None,
                };
                let shape = edit(dims)?;
                let mut out = Vec::new();
                for f in fields.iter().filter(|f| f.number != 2) {
                    f.write(&mut out);
                }
                if let Some(shape) = shape {
                    put_bytes_field(&mut out, 2, &shape);
                }
                Ok(Edit::Replace(out))
            }
            _ => Ok(Edit::Keep),
        })
        .map(Edit::Replace),
        _ => Ok(Edit::Keep),
    })
}

/// One `TensorProto`, the parts this module reads.
struct Tensor {
    name: String,
    dims: Vec<i64>,
    data_type: u64,
    values: TensorValues,
}

enum TensorValues {
    F32(Vec<f32>),
    I64(Vec<i64>),
    Other,
}

const FLOAT: u64 = 1;
const INT64: u64 = 7;

impl Tensor {
    fn parse(bytes: &[u8]) -> Result<Self, FitError> {
        let fields = parse(bytes)?;
        let mut t = Tensor {
            name: String::new(),
            dims: Vec::new(),
            data_type: 0,
            values: TensorValues::Other,
        };
        let mut raw: Option<&[u8]> = None;
        let (mut floats, mut ints) = (Vec::new(), Vec::new());
        for f in &fields {
            match (f.number, &f.value) {
                (1, Value::Varint(v)) => t.dims.push(*v as i64),
                (1, Value::Bytes(b)) => t.dims.extend(packed_varints(b)?.map(|v| v as i64)),
                (2, Value::Varint(v)) => t.data_type = *v,
                (4, Value::Fixed32(b)) => floats.push(f32::from_le_bytes(*b)),
                (4, Value::Bytes(b)) => floats.extend(
                    b.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                ),
                (7, Value::Varint(v)) => ints.push(*v as i64),
                (7, Value::Bytes(b)) => ints.extend(packed_varints(b)?.map(|v| v as i64)),
                (8, Value::Bytes(b)) => {
                    t.name = String::from_utf8_lossy(b).into_owned();
                }
                (9, Value::Bytes(b)) => raw = Some(b),
                // data_location = EXTERNAL
                (14, Value::Varint(1)) => return Err(FitError::ExternalData),
                _ => {}
            }
        }
        t.values = match (t.data_type, raw) {
            (FLOAT, Some(b)) => TensorValues::F32(
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            (FLOAT, None) => TensorValues::F32(floats),
            (INT64, Some(b)) => TensorValues::I64(
                b.chunks_exact(8)
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
            (INT64, None) => TensorValues::I64(ints),
            _ => TensorValues::Other,
        };
        Ok(t)
    }
}

/// What a size-bound initializer is, or `None` when it does not depend on the input size.
fn classify(t: &Tensor, reshape_shapes: &[String], size: (u32, u32)) -> Option<FeedKind> {
    match &t.values {
        TensorValues::F32(v) => classify_anchor_table(v, &t.dims, size),
        TensorValues::I64(v) if reshape_shapes.contains(&t.name) => classify_shape(v, size),
        _ => None,
    }
}

/// Anchor points (`2 × N`, x row then y row, or `N × 2` pairs) or per-anchor strides (`N`) of the
/// fixed size, over strides 8–32 (YOLOv8/11/26) or 8–64 (P6 models).
fn classify_anchor_table(values: &[f32], dims: &[i64], size: (u32, u32)) -> Option<FeedKind> {
    let close = |a: &[f32], b: &[f32]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4)
    };
    for levels in [vec![8, 16, 32], vec![8, 16, 32, 64]] {
        if !levels.iter().all(|&s| divides(size, s)) {
            continue;
        }
        let n = cell_count(size, &levels);
        if values.len() != n && values.len() != 2 * n {
            continue;
        }
        for content in [
            TableContent::Strides,
            TableContent::PointsPlanar,
            TableContent::PointsPaired,
        ] {
            if close(values, &anchor_table(size, &levels, content)) {
                return Some(FeedKind::AnchorTable {
                    levels,
                    content,
                    dims: dims.to_vec(),
                    count: n as i64,
                });
            }
        }
    }
    None
}

/// A reshape target ending in a feature map's `(h, w)` or its cell count.
fn classify_shape(values: &[i64], size: (u32, u32)) -> Option<FeedKind> {
    for stride in STRIDES {
        if !divides(size, stride) {
            continue;
        }
        let (h, w) = (i64::from(size.0 / stride), i64::from(size.1 / stride));
        let end = values.len();
        let values = values.to_vec();
        if end >= 2 && values[end - 2..] == [h, w] {
            return Some(FeedKind::MapShape { values, stride });
        }
        if end >= 1 && values[end - 1] == h * w {
            return Some(FeedKind::CellCount { values, stride });
        }
    }
    None
}

// --- protobuf wire format -------------------------------------------------------------------

/// One field of a protobuf message, borrowing the message's bytes.
#[derive(Debug, Clone, Copy)]
struct Field<'a> {
    number: u64,
    value: Value<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Bytes(&'a [u8]),
    Fixed32([u8; 4]),
}

/// What [`rebuild`] does with one field.
enum Edit {
    Keep,
    Drop,
    /// Replace a length-delimited field's payload.
    Replace(Vec<u8>),
}

impl Field<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        match self.value {
            Value::Varint(v) => put_varint_field(out, self.number, v),
            Value::Fixed64(b) => {
                put_varint(out, self.number << 3 | 1);
                out.extend_from_slice(&b);
            }
            Value::Bytes(b) => put_bytes_field(out, self.number, b),
            Value::Fixed32(b) => {
                put_varint(out, self.number << 3 | 5);
                out.extend_from_slice(&b);
            }
        }
    }
}

fn read_varint(buf: &[u8], at: &mut usize) -> Result<u64, FitError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf
            .get(*at)
            .ok_or(FitError::Malformed("truncated varint"))?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(FitError::Malformed("varint longer than 10 bytes"))
}

fn take<'a>(buf: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8], FitError> {
    let end = at
        .checked_add(n)
        .filter(|&e| e <= buf.len())
        .ok_or(FitError::Malformed(
            "field runs past the end of its message",
        ))?;
    let out = &buf[*at..end];
    *at = end;
    Ok(out)
}

fn parse(buf: &[u8]) -> Result<Vec<Field<'_>>, FitError> {
    let mut fields = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let key = read_varint(buf, &mut at)?;
        let number = key >> 3;
        let value = match key & 7 {
            0 => Value::Varint(read_varint(buf, &mut at)?),
            1 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(take(buf, &mut at, 8)?);
                Value::Fixed64(b)
            }
            2 => {
                let n = usize::try_from(read_varint(buf, &mut at)?)
                    .map_err(|_| FitError::Malformed("length does not fit in memory"))?;
                Value::Bytes(take(buf, &mut at, n)?)
            }
            5 => {
                let mut b = [0u8; 4];
                b.copy_from_slice(take(buf, &mut at, 4)?);
                Value::Fixed32(b)
            }
            _ => return Err(FitError::Malformed("unsupported wire type")),
        };
        fields.push(Field { number, value });
    }
    Ok(fields)
}

/// Copies a message field by field, applying `edit` to each.
fn rebuild(
    buf: &[u8],
    mut edit: impl FnMut(Field<'_>) -> Result<Edit, FitError>,
) -> Result<Vec<u8>, FitError> {
    let mut out = Vec::with_capacity(buf.len());
    for f in parse(buf)? {
        match edit(f)? {
            Edit::Keep => f.write(&mut out),
            Edit::Drop => {}
            Edit::Replace(payload) => put_bytes_field(&mut out, f.number, &payload),
        }
    }
    Ok(out)
}

fn packed_varints(b: &[u8]) -> Result<impl Iterator<Item = u64>, FitError> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < b.len() {
        out.push(read_varint(b, &mut at)?);
    }
    Ok(out.into_iter())
}

fn strings(fields: &[Field<'_>], number: u64) -> Result<Vec<String>, FitError> {
    fields
        .iter()
        .filter(|f| f.number == number)
        .map(|f| match f.value {
            Value::Bytes(b) => Ok(String::from_utf8_lossy(b).into_owned()),
            _ => Err(FitError::Malformed(
                "a string field is not length-delimited",
            )),
        })
        .collect()
}

fn string_field(fields: &[Field<'_>], number: u64) -> Result<Option<String>, FitError> {
    Ok(strings(fields, number)?.into_iter().next())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint_field(out: &mut Vec<u8>, number: u64, v: u64) {
    put_varint(out, number << 3);
    put_varint(out, v);
}

fn put_bytes_field(out: &mut Vec<u8>, number: u64, payload: &[u8]) {
    put_varint(out, number << 3 | 2);
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

#[cfg(test)]
#[path = "fit_tests.rs"]
mod tests;
