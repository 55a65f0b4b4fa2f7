//! Group commit: the one place that makes writes durable.
//!
//! A writer finishes its sled write, then asks the flusher for durability and waits. The flusher
//! thread takes every request that has arrived, calls `flush()` once (plus `fdatasync` of the log
//! when `store.fsync` is on), and answers all of them. A request is only ever answered by a flush
//! that started after the request arrived, so every acknowledged write is on disk. Writers that
//! arrive while a flush runs form the next batch, so one flush serves many writers under load.
//!
//! sled 0.34 deadlocks when `flush_async` is called concurrently; a single thread calling the
//! blocking `flush()` avoids that and keeps fsync work off the async threads.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

/// The answer a waiter gets: `Err` carries the flush error's text (shared by the whole batch).
type Ack = Result<(), Arc<str>>;

/// Requests queued beyond this make writers wait for room (bounded, like everything else).
const QUEUE: usize = 65_536;
/// The longest a batch waits for writes still in progress before flushing without them.
const MAX_GATHER: Duration = Duration::from_millis(2);

pub struct Flusher {
    tx: Option<mpsc::Sender<oneshot::Sender<Ack>>>,
    thread: Option<JoinHandle<()>>,
    /// Writes that started (through `Store::write`) and have not yet asked for durability.
    in_progress: Arc<AtomicUsize>,
}

/// Marks a write in progress for as long as it lives; see [`Flusher::begin_write`].
pub struct WriteGuard(Arc<AtomicUsize>);

impl Drop for WriteGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Flusher {
    /// Starts the flusher thread. `log_file` is sled's log, synced after each flush when given.
    pub fn start(db: sled::Db, log_file: Option<Arc<File>>) -> std::io::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<oneshot::Sender<Ack>>(QUEUE);
        let in_progress = Arc::new(AtomicUsize::new(0));
        let writing = in_progress.clone();
        let thread = std::thread::Builder::new()
            .name("voucherd-flusher".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(256);
                while let Some(first) = rx.blocking_recv() {
                    batch.push(first);
                    // sled's flush excludes its transactions, so flushing the moment the first
                    // request arrives would leave every other writer's transaction waiting for
                    // the next flush. Instead gather: wait (briefly, bounded) until writes already
                    // in progress have asked too. A lone writer sees none and flushes at once.
                    let gather_until = Instant::now() + MAX_GATHER;
                    loop {
                        while let Ok(more) = rx.try_recv() {
                            batch.push(more);
                        }
                        if writing.load(Ordering::Acquire) == 0 || Instant::now() >= gather_until {
                            break;
                        }
                        std::thread::yield_now();
                    }
                    let started = std::time::Instant::now();
                    let result: Ack =
                        sync(&db, log_file.as_deref()).map_err(|e| Arc::from(e.to_string()));
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "store flush failed");
                    }
                    metrics::counter!("voucherd_store_flushes_total").increment(1);
                    metrics::histogram!("voucherd_store_flush_batch").record(batch.len() as f64);
                    metrics::histogram!("voucherd_store_flush_seconds")
                        .record(started.elapsed().as_secs_f64());
                    for waiter in batch.drain(..) {
                        let _ = waiter.send(result.clone());
                    }
                }
            })?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            in_progress,
        })
    }

    /// Declares a write about to start; the batch being gathered waits for it (up to
    /// `MAX_GATHER`) until the guard drops, which the writer does right after queueing its
    /// durability request (or on failure).
    pub fn begin_write(&self) -> WriteGuard {
        self.in_progress.fetch_add(1, Ordering::AcqRel);
        WriteGuard(self.in_progress.clone())
    }

    /// Waits until every write this caller finished before the call is durable. `guard`, the
    /// caller's in-progress mark, is released once the request is queued.
    pub async fn durable(&self, guard: Option<WriteGuard>) -> Ack {
        let (ack, done) = oneshot::channel();
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| Arc::<str>::from("store is closed"))?;
        let queued = tx.send(ack).await;
        drop(guard);
        queued.map_err(|_| Arc::<str>::from("store flusher stopped"))?;
        done.await
            .map_err(|_| Arc::<str>::from("store flusher stopped"))?
    }
}

/// The durable step itself: sled's `flush()` (write and `sync_file_range` of its log), then an
/// `fdatasync` of the log file when given, which also makes a grown file's length durable.
pub fn sync(db: &sled::Db, log_file: Option<&File>) -> std::io::Result<()> {
    db.flush().map_err(std::io::Error::other)?;
    if let Some(f) = log_file {
        f.sync_data()?;
    }
    Ok(())
}

impl Drop for Flusher {
    /// Closing the queue ends the thread after its last batch; joining it means the sled handle
    /// it holds is gone when the store is dropped (so the directory lock is released).
    fn drop(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
