//! Recycled frame buffers. A decoded RGB frame is 2–6 MB, made on a camera's decode thread and
//! dropped on an inference worker: allocated fresh each time, glibc serves such blocks from
//! per-thread arenas once its dynamic mmap threshold has grown past them, and every camera's
//! arenas keep their peak. Handing buffers back for the next frame keeps the number in circulation
//! at what the queues actually hold, whatever the number of threads.

use std::sync::Mutex;

/// Buffers kept at most; more in circulation than this are freed when returned.
const MAX_KEPT: usize = 32;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A buffer of `len` bytes (contents unspecified), recycled when one is free.
pub fn frame_buffer(len: usize) -> Vec<u8> {
    let recycled = POOL
        .lock()
        .ok()
        .and_then(|mut p| {
            let i = p.iter().position(|b| b.capacity() >= len)?;
            Some(p.swap_remove(i))
        })
        .unwrap_or_default();
    let mut buf = recycled;
    // Only the length changes for a recycled buffer of this size; the decoder overwrites it all.
    buf.resize(len, 0);
    buf
}

/// Returns a frame's buffer for reuse.
pub fn recycle(mut buf: Vec<u8>) {
    if buf.capacity() == 0 {
        return;
    }
    buf.clear();
    if let Ok(mut p) = POOL.lock()
        && p.len() < MAX_KEPT
    {
        p.push(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_buffer_is_handed_out_again() {
        // Sizes no other test uses, so tests running in parallel do not take these buffers.
        let a = frame_buffer(1_234_567);
        assert_eq!(a.len(), 1_234_567);
        let ptr = a.as_ptr();
        recycle(a);
        let b = frame_buffer(1_234_000);
        assert_eq!(b.len(), 1_234_000);
        assert_eq!(b.as_ptr(), ptr, "the recycled allocation was not reused");
        recycle(b);
        // Too small a buffer is not handed out for a bigger frame.
        let c = frame_buffer(2_000_001);
        assert_ne!(c.as_ptr(), ptr);
        assert_eq!(c.len(), 2_000_001);
    }
}
