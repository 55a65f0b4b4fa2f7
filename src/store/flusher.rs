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
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

/// The answer a waiter gets: `Err` carries the flush error's text (shared by the whole batch).
type Ack = Result<(), Arc<str>>;

/// Requests queued beyond this make writers wait for room (bounded, like everything else).
const QUEUE: usize = 65_536;

pub struct Flusher {
    tx: Option<mpsc::Sender<oneshot::Sender<Ack>>>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Starts the flusher thread. `log_file` is sled's log, synced after each flush when given.
    pub fn start(db: sled::Db, log_file: Option<File>) -> std::io::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<oneshot::Sender<Ack>>(QUEUE);
        let thread = std::thread::Builder::new()
            .name("voucherd-flusher".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(256);
                while let Some(first) = rx.blocking_recv() {
                    batch.push(first);
                    while let Ok(more) = rx.try_recv() {
                        batch.push(more);
                    }
                    let started = std::time::Instant::now();
                    let result: Ack = db
                        .flush()
                        .map(|_| ())
                        .map_err(|e| Arc::from(e.to_string()))
                        .and_then(|()| match &log_file {
                            Some(f) => f.sync_data().map_err(|e| Arc::from(e.to_string())),
                            None => Ok(()),
                        });
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
        })
    }

    /// Waits until every write this caller finished before the call is durable.
    pub async fn durable(&self) -> Ack {
        let (ack, done) = oneshot::channel();
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| Arc::<str>::from("store is closed"))?;
        tx.send(ack)
            .await
            .map_err(|_| Arc::<str>::from("store flusher stopped"))?;
        done.await
            .map_err(|_| Arc::<str>::from("store flusher stopped"))?
    }

    /// The same from a blocking thread (inside `Store::run`).
    pub fn durable_blocking(&self) -> Ack {
        let (ack, done) = oneshot::channel();
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| Arc::<str>::from("store is closed"))?;
        tx.blocking_send(ack)
            .map_err(|_| Arc::<str>::from("store flusher stopped"))?;
        done.blocking_recv()
            .map_err(|_| Arc::<str>::from("store flusher stopped"))?
    }
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
