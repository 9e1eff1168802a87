//! The video pipeline: sources → sampler → detector → tracker → plate reads and rules → events.
//!
//! A decode thread per camera samples frames to the camera's target rate and queues them
//! ([`queue::FrameQueues`], dropping the oldest when inference falls behind); a pool of inference
//! workers, each with its own ONNX Runtime sessions, takes cameras round-robin and runs every
//! per-frame stage for the frame it took.

pub mod metrics;
pub mod plates;
pub mod queue;
pub mod sampler;
