//! Raw model outputs → detections or text, one file per decoder family.

mod ctc;
mod dbnet;
mod detections;
mod slot;

pub use ctc::{CtcRead, decode_ctc};
pub use dbnet::{DbnetParams, decode_dbnet};
pub use detections::{
    EndToEndParams, UltralyticsParams, YoloxParams, decode_end2end, decode_ultralytics,
    decode_yolox, iou, nms,
};
pub use slot::{SlotRead, decode_slots};
