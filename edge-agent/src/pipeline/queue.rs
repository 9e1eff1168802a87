//! Hands sampled frames from the per-camera decode threads to the inference workers.
//!
//! Each camera has a short queue; when inference falls behind, the oldest waiting frame is dropped
//! (and counted) so the workers always see recent frames and memory stays bounded. Workers take
//! cameras round-robin, and a camera is worked on by one worker at a time, so tracking and rules
//! see each camera's frames in order while several cameras share the workers fairly.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Per-camera bounded queues with fair, in-order hand-out.
pub struct FrameQueues<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    /// Signalled when a frame leaves a queue, for [`FrameQueues::push_blocking`].
    room: Condvar,
    capacity: usize,
}

struct State<T> {
    queues: Vec<VecDeque<T>>,
    busy: Vec<bool>,
    closed: Vec<bool>,
    dropped: Vec<u64>,
    next: usize,
    shutdown: bool,
}

/// What a worker gets from [`FrameQueues::take`].
#[derive(Debug, PartialEq)]
pub enum Take<T> {
    /// A frame of camera `.0`; call [`FrameQueues::release`] with that camera when done.
    Frame(usize, T),
    /// Every camera is closed and drained, or the queues were shut down.
    Finished,
    /// Nothing arrived within the timeout.
    Idle,
}

impl<T> FrameQueues<T> {
    /// `cameras` queues holding at most `capacity` (≥ 1) frames each.
    pub fn new(cameras: usize, capacity: usize) -> Self {
        FrameQueues {
            state: Mutex::new(State {
                queues: (0..cameras).map(|_| VecDeque::new()).collect(),
                busy: vec![false; cameras],
                closed: vec![false; cameras],
                dropped: vec![0; cameras],
                next: 0,
                shutdown: false,
            }),
            ready: Condvar::new(),
            room: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A worker that panicked while holding the lock leaves consistent queues behind (every
        // update is a single push/pop), so keep going rather than cascade the panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame; returns true when an older frame had to be dropped to make room.
    pub fn push(&self, camera: usize, frame: T) -> bool {
        let mut s = self.lock();
        let Some(q) = s.queues.get_mut(camera) else {
            return false;
        };
        let dropped = if q.len() >= self.capacity {
            q.pop_front();
            true
        } else {
            false
        };
        q.push_back(frame);
        if dropped {
            s.dropped[camera] += 1;
        }
        drop(s);
        self.ready.notify_one();
        dropped
    }

    /// Queues a frame, waiting while the camera's queue is full: for replaying files, where every
    /// frame should be analysed and the source can simply wait. Returns false after shutdown.
    pub fn push_blocking(&self, camera: usize, frame: T) -> bool {
        let mut s = self.lock();
        loop {
            if s.shutdown {
                return false;
            }
            match s.queues.get(camera) {
                None => return false,
                Some(q) if q.len() < self.capacity => break,
                Some(_) => {
                    s = self
                        .room
                        .wait_timeout(s, Duration::from_millis(100))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        s.queues[camera].push_back(frame);
        drop(s);
        self.ready.notify_one();
        true
    }

    /// Adds a queue for one more camera (cameras added while running); returns its index.
    pub fn add_camera(&self) -> usize {
        let mut s = self.lock();
        s.queues.push(VecDeque::new());
        s.busy.push(false);
        s.closed.push(false);
        s.dropped.push(0);
        s.queues.len() - 1
    }

    /// Closes a camera's queue, drops what waits in it, and returns once no worker is on it: after
    /// this the camera's state is no longer touched by the workers.
    pub fn discard(&self, camera: usize) {
        let mut s = self.lock();
        if camera >= s.queues.len() {
            return;
        }
        s.closed[camera] = true;
        s.queues[camera].clear();
        while s.busy[camera] && !s.shutdown {
            s = self
                .ready
                .wait_timeout(s, Duration::from_millis(20))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(s);
        self.room.notify_all();
        self.ready.notify_all();
    }

    /// Marks a camera's source as finished; its queued frames are still handed out.
    pub fn close(&self, camera: usize) {
        let mut s = self.lock();
        if let Some(c) = s.closed.get_mut(camera) {
            *c = true;
        }
        drop(s);
        self.ready.notify_all();
    }

    /// Stops hand-out now; waiting workers get [`Take::Finished`].
    pub fn shutdown(&self) {
        self.lock().shutdown = true;
        self.ready.notify_all();
        self.room.notify_all();
    }

    /// The next frame, round-robin over cameras that have one and are not being worked on.
    pub fn take(&self, timeout: Duration) -> Take<T> {
        let mut s = self.lock();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if s.shutdown {
                return Take::Finished;
            }
            let n = s.queues.len();
            for k in 0..n {
                let cam = (s.next + k) % n;
                if !s.busy[cam]
                    && let Some(frame) = s.queues[cam].pop_front()
                {
                    s.busy[cam] = true;
                    s.next = (cam + 1) % n;
                    self.room.notify_all();
                    return Take::Frame(cam, frame);
                }
            }
            let all_done = (0..n).all(|c| s.closed[c] && s.queues[c].is_empty() && !s.busy[c]);
            if all_done {
                return Take::Finished;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Take::Idle;
            }
            s = self
                .ready
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Ends a worker's turn on `camera`.
    pub fn release(&self, camera: usize) {
        if let Some(b) = self.lock().busy.get_mut(camera) {
            *b = false;
        }
        self.ready.notify_all();
    }

    /// Frames dropped so far per camera.
    pub fn dropped(&self) -> Vec<u64> {
        self.lock().dropped.clone()
    }

    /// Frames waiting per camera.
    pub fn depths(&self) -> Vec<usize> {
        self.lock().queues.iter().map(VecDeque::len).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const T: Duration = Duration::from_millis(50);

    #[test]
    fn drops_oldest_when_full_and_counts() {
        let q = FrameQueues::new(1, 2);
        assert!(!q.push(0, 1));
        assert!(!q.push(0, 2));
        assert!(q.push(0, 3));
        assert_eq!(q.dropped(), vec![1]);
        assert_eq!(q.take(T), Take::Frame(0, 2));
        q.release(0);
        assert_eq!(q.take(T), Take::Frame(0, 3));
    }

    #[test]
    fn one_worker_per_camera_keeps_order() {
        let q = FrameQueues::new(1, 4);
        q.push(0, 1);
        q.push(0, 2);
        assert_eq!(q.take(T), Take::Frame(0, 1));
        // Camera 0 is busy: a second worker must not get frame 2 before frame 1 is done.
        assert_eq!(q.take(T), Take::Idle);
        q.release(0);
        assert_eq!(q.take(T), Take::Frame(0, 2));
    }

    #[test]
    fn round_robin_across_cameras() {
        let q = FrameQueues::new(3, 8);
        for i in 0..3 {
            q.push(0, i);
            q.push(1, 10 + i);
            q.push(2, 20 + i);
        }
        let mut order = Vec::new();
        for _ in 0..9 {
            match q.take(T) {
                Take::Frame(c, f) => {
                    order.push(f);
                    q.release(c);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(order, vec![0, 10, 20, 1, 11, 21, 2, 12, 22]);
    }

    #[test]
    fn finished_after_all_closed_and_drained() {
        let q = FrameQueues::new(2, 2);
        q.push(1, 5);
        q.close(0);
        q.close(1);
        assert_eq!(q.take(T), Take::Frame(1, 5));
        // Still busy: not finished until released.
        assert_eq!(q.take(T), Take::Idle);
        q.release(1);
        assert_eq!(q.take(T), Take::Finished);
    }

    #[test]
    fn blocking_push_waits_for_room() {
        let q = Arc::new(FrameQueues::new(1, 1));
        assert!(q.push_blocking(0, 1));
        let q2 = q.clone();
        let h = std::thread::spawn(move || q2.push_blocking(0, 2));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(q.depths(), vec![1]);
        assert_eq!(q.take(T), Take::Frame(0, 1));
        assert_eq!(h.join().ok(), Some(true));
        q.release(0);
        assert_eq!(q.take(T), Take::Frame(0, 2));
        assert_eq!(q.dropped(), vec![0]);
    }

    #[test]
    fn cameras_added_later_are_served_and_discarded_ones_are_not() {
        let q = FrameQueues::new(1, 4);
        q.push(0, 1);
        q.push(0, 2);
        let added = q.add_camera();
        assert_eq!(added, 1);
        q.push(added, 10);
        q.discard(0);
        assert_eq!(q.take(T), Take::Frame(1, 10));
        q.release(1);
        assert_eq!(q.take(T), Take::Idle);
        q.close(1);
        assert_eq!(q.take(T), Take::Finished);
    }

    #[test]
    fn wakes_a_waiting_worker_and_shuts_down() {
        let q = Arc::new(FrameQueues::new(1, 2));
        let q2 = q.clone();
        let h = std::thread::spawn(move || q2.take(Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(20));
        q.push(0, 7);
        assert_eq!(h.join().ok(), Some(Take::Frame(0, 7)));
        q.shutdown();
        assert_eq!(q.take(Duration::from_secs(5)), Take::Finished);
    }
}
